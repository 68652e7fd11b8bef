"""Faults that must cost one job at most, under every start method."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskpool import SerializationError, TaskPool
from tests import jobs

TIMEOUT = 30.0


def test_an_open_file_as_a_result_fails_with_serialization_error_not_a_stringio(
    pool: TaskPool, tmp_path: Path
) -> None:
    path = tmp_path / "data.txt"
    path.write_text("contents\n")
    with pytest.raises(SerializationError) as info:
        pool.submit(jobs.return_open_file, str(path)).result(timeout=TIMEOUT)
    assert info.value.part == "result"
    assert "open file" in str(info.value)
    assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9


def test_lambdas_and_closures_still_travel_by_value(pool: TaskPool) -> None:
    offset = 10
    assert pool.submit(lambda x: x + offset, 1).result(timeout=TIMEOUT) == 11
    assert pool.map(lambda x: x * offset, range(3)) == [0, 10, 20]
