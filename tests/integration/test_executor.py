"""`pool.as_executor()` keeps the `concurrent.futures.Executor` contract."""

from __future__ import annotations

import concurrent.futures as cf
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from taskpool import Event, TaskPool
from tests import jobs

TIMEOUT = 30


def started_count(pool: TaskPool, count: int) -> threading.Event:
    """An Event set once ``count`` jobs of ``pool`` have started (their futures are then running)."""
    started: list[Event] = []
    reached = threading.Event()

    def on_started(event: Event) -> None:
        started.append(event)
        if len(started) >= count:
            reached.set()

    pool.on("job_started", on_started)
    return reached


def test_submit_after_shutdown_raises_runtime_error(any_pool: TaskPool) -> None:
    executor = any_pool.as_executor()
    assert executor.submit(jobs.square, 3).result(TIMEOUT) == 9
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(jobs.square, 1)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.map(jobs.square, [1])
    executor.shutdown()  # again: nothing more happens


def test_the_executor_as_a_context_manager_shuts_the_pool_down(any_pool: TaskPool) -> None:
    with any_pool.as_executor() as executor:
        future = executor.submit(jobs.square, 4)
    assert future.result(timeout=0) == 16
    assert any_pool._joined


AT_EXIT = textwrap.dedent(
    """
    import atexit

    from taskpool import TaskPool

    pool = TaskPool(1, backend="thread")
    executor = pool.as_executor()


    def submit_late():
        try:
            executor.submit(pow, 2, 3)
        except RuntimeError as exc:
            print("refused:", exc)
        else:
            print("accepted")


    atexit.register(submit_late)  # runs at exit before the pool's own exit hook, made earlier
    print(executor.submit(pow, 2, 3).result(10))
    """
)


def test_submit_during_interpreter_shutdown_raises_runtime_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", AT_EXIT],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "8",
        "refused: cannot schedule new futures after interpreter shutdown",
    ]


def test_map_sends_chunksize_items_per_job_and_keeps_input_order(pool: TaskPool) -> None:
    submitted: list[Event] = []
    pool.on("job_submitted", submitted.append)
    executor = pool.as_executor()
    results = executor.map(jobs.add, range(10), range(100, 113), chunksize=4)
    assert list(results) == [i + 100 + i for i in range(10)]  # the shortest iterable ends it
    executor.shutdown()  # the event thread has handled every job_submitted event once the pool is joined
    assert len(submitted) == 3


def test_map_with_the_default_chunksize_sends_one_item_per_job(any_pool: TaskPool) -> None:
    submitted: list[Event] = []
    any_pool.on("job_submitted", submitted.append)
    with any_pool.as_executor() as executor:
        assert list(executor.map(jobs.square, [1, 2, 3])) == [1, 4, 9]
    assert len(submitted) == 3


@pytest.mark.parametrize("chunksize", [0, -1])
def test_map_refuses_a_chunksize_below_one(any_pool: TaskPool, chunksize: int) -> None:
    with pytest.raises(ValueError, match="chunksize must be >= 1"):
        any_pool.as_executor().map(jobs.square, [1], chunksize=chunksize)


def test_map_raises_a_job_error_in_its_turn(any_pool: TaskPool) -> None:
    results = any_pool.as_executor().map(jobs.raise_if_negative, [1, -2, 3])
    assert next(results) == 1
    with pytest.raises(ValueError, match="-2"):
        next(results)


def test_map_timeout_counts_from_the_call_not_from_each_result() -> None:
    # On threads, a job takes exactly as long as it sleeps. Results come at 0.6 s and 1.2 s after the call:
    # each is less than 0.9 s after the one before, but the second is past 0.9 s from the call.
    pool = TaskPool(2, backend="thread")
    try:
        results = pool.as_executor().map(jobs.sleep_for, [0.6, 1.2], timeout=0.9)
        assert next(results) == 0.6
        with pytest.raises(cf.TimeoutError):
            next(results)
    finally:
        pool.shutdown()


def test_closing_the_map_iterator_cancels_the_jobs_not_started(thread_pool: TaskPool) -> None:
    go, block = threading.Event(), threading.Event()
    go.set()
    succeeded: list[Event] = []
    thread_pool.on("job_succeeded", succeeded.append)
    second_started = started_count(thread_pool, 2)
    results = thread_pool.as_executor().map(jobs.wait_for_event, [go, block, go, go, go])
    assert next(results) is True
    assert second_started.wait(TIMEOUT)
    assert isinstance(results, types.GeneratorType)
    results.close()  # the second job runs (it waits for `block`); the last three have not started
    block.set()
    thread_pool.shutdown()
    assert len(succeeded) == 2


def test_shutdown_without_wait_returns_at_once_and_the_pool_ends_when_the_jobs_do(
    thread_pool: TaskPool,
) -> None:
    block = threading.Event()
    executor = thread_pool.as_executor()
    running = executor.submit(jobs.wait_for_event, block)
    executor.shutdown(wait=False)
    assert not running.done()
    with pytest.raises(RuntimeError):
        executor.submit(jobs.square, 1)
    block.set()
    assert running.result(TIMEOUT) is True
    joiners = [t for t in threading.enumerate() if t.name == "taskpool-executor-join"]
    for joiner in joiners:
        joiner.join(TIMEOUT)
    assert thread_pool._joined


def test_shutdown_with_cancel_futures_cancels_the_jobs_not_started(thread_pool: TaskPool) -> None:
    block = threading.Event()
    first_started = started_count(thread_pool, 1)
    executor = thread_pool.as_executor()
    running = executor.submit(jobs.wait_for_event, block)
    assert first_started.wait(TIMEOUT)
    waiting = executor.submit(jobs.square, 2)
    executor.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    block.set()
    assert running.result(TIMEOUT) is True
    executor.shutdown(wait=True)
