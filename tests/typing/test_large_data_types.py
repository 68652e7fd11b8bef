"""Static types of `TaskPool.share` and `pool.shared.array`: `assert_type` checks (mypy --strict runs over
tests). The handle `share` returns is typed as the object, so a job that takes the object type-checks with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any  # noqa: F401  # Any: named in a string type below

import pytest
from typing_extensions import assert_type

from taskpool import SharedArray, TaskPool

np = pytest.importorskip("numpy")

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray


def first(weights: NDArray[numpy.float64], i: int) -> float:
    return float(weights[i])


def test_share_and_shared_arrays_are_typed() -> None:
    with TaskPool(1, backend="inline") as pool:
        data: NDArray[numpy.float64] = np.zeros(3)
        weights = pool.share(data)
        assert_type(weights, "NDArray[numpy.float64]")
        assert_type(pool.submit(first, weights, 1).result(timeout=10), float)
        int32: type[numpy.int32] = np.int32
        table = pool.shared.array((2, 3), int32)
        assert_type(table, "NDArray[numpy.int32]")
        assert_type(pool.shared.array(4), "NDArray[Any]")
        assert_type(pool.shared.array("i", [1, 2]), SharedArray[int])
        assert table.shape == (2, 3)
        assert table.dtype == np.int32
