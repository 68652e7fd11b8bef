"""Static types of `job_rng` (one overload per kind) and of the map family with ``checkpoint=``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from typing_extensions import assert_type

import taskpool
from taskpool import IMapIterator, TaskPool

if TYPE_CHECKING:
    import numpy


def _draws() -> None:
    assert_type(taskpool.job_seed(), int)
    assert_type(taskpool.job_rng(), random.Random)
    assert_type(taskpool.job_rng("random"), random.Random)
    assert_type(taskpool.job_rng("numpy"), numpy.random.Generator)


def square(x: int) -> int:
    return x * x


def test_checkpointed_maps_keep_their_types(tmp_path: Path) -> None:
    with TaskPool(1, backend="inline", seed=1) as pool:
        assert_type(pool.map(square, [1, 2], checkpoint=tmp_path / "a"), list[int])
        assert_type(pool.imap(square, [1], checkpoint=str(tmp_path / "b")), IMapIterator[int])
        assert pool.map(square, [1, 2], checkpoint=tmp_path / "a") == [1, 4]
