"""Every error out of the map family says which input: the item's position, or the positions a crashed chunk
held, as attributes and in the text; a failed map cancels the items of that call that have not started."""

from __future__ import annotations

import sys
import threading

import pytest

from taskpool import InitializerError, TaskPool, WorkerCrashedError
from tests import jobs

TIMEOUT = 30.0


def test_a_jobs_own_exception_in_map_keeps_its_type_and_args_and_gains_its_position(
    pool: TaskPool,
) -> None:
    with pytest.raises(ValueError, match="bad item") as info:
        pool.map(jobs.fail_at, range(30), chunksize=5)
    assert info.value.args == ("bad item", 17)
    assert info.value.taskpool_position == 17  # type: ignore[attr-defined]
    if sys.version_info >= (3, 11):
        assert "taskpool: raised by the map's input item 17" in info.value.__notes__


def test_starmap_and_imap_say_the_position_too(pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="bad item") as info:
        pool.starmap(jobs.fail_at, [(i, 4) for i in range(10)], chunksize=3)
    assert info.value.taskpool_position == 4  # type: ignore[attr-defined]
    results = pool.imap(jobs.fail_at, range(12), chunksize=5)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="bad item") as info:
        list(pool.imap(jobs.fail_at, range(30), chunksize=4))
    assert info.value.taskpool_position == 17  # type: ignore[attr-defined]


def test_a_crash_in_map_names_the_positions_its_chunk_held(pool: TaskPool) -> None:
    with pytest.raises(WorkerCrashedError) as info:
        pool.map(jobs.crash_at, range(30), chunksize=5)
    assert info.value.positions == range(15, 20)
    assert "input items 15..19" in str(info.value)
    assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9


def test_thread_and_inline_backends_say_the_position(any_pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="bad item") as info:
        any_pool.map(jobs.fail_at, range(30), chunksize=7)
    assert info.value.taskpool_position == 17  # type: ignore[attr-defined]


def test_a_failed_map_cancels_the_items_of_that_call_that_have_not_started() -> None:
    started: list[int] = []
    gate = threading.Event()

    def slow_unless_first(x: int) -> int:
        started.append(x)
        if x == 0:
            raise ValueError("first item fails")
        gate.wait(TIMEOUT)
        return x

    with TaskPool(1, backend="thread") as pool:
        with pytest.raises(ValueError, match="first item fails"):
            pool.map(slow_unless_first, range(50), chunksize=1)
        gate.set()
    # Item 1 may have started while map was raising; nothing after it ran.
    assert set(started) <= {0, 1}


def test_a_broken_pools_error_names_each_jobs_own_positions_once() -> None:
    """Every job of a broken pool fails with the error that broke it: each gets its own copy, so one job's
    positions are not written into another's, nor into what later submissions raise."""
    from tests._failure_jobs import initializer_raises

    pool = TaskPool(2, initializer=initializer_raises)
    try:
        results = pool.imap(jobs.square, range(4), chunksize=1)
        with pytest.raises(InitializerError) as info:
            list(results)
        assert str(info.value).count("[the job held") == 1, str(info.value)
        assert info.value.positions == range(0, 1)
        with pytest.raises(InitializerError) as later:
            pool.submit(jobs.square, 1).result(timeout=TIMEOUT)
        assert "the job held" not in str(later.value)
    finally:
        pool.terminate()
