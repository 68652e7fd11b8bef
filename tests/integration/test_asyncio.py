"""asyncio as a caller: ``await`` a job, `as_completed_async`, `amap`, ``async with``, and cancellation.

Cancelling the task that awaits a job stops it: on the process backend its worker is gone within a second. On the
thread backend a running job runs to its end and a job not started is cancelled. Order comes from events, never
from sleeps; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from taskpool import JobFuture, TaskPool, as_completed_async
from tests import jobs

from ._aio import StartedPids, gone_within

TIMEOUT = 30
STOPPED_WITHIN = 1.0  # seconds from cancelling a task to its job's worker being gone


def run(main: Any) -> Any:
    return asyncio.run(asyncio.wait_for(main, TIMEOUT))


async def cancel_after_start(coro: Any, started: StartedPids) -> float:
    """Run ``coro`` as a task, cancel it once ``started`` has seen its jobs start; returns when it cancelled."""
    task = asyncio.ensure_future(coro)
    assert await asyncio.to_thread(started.reached.wait, TIMEOUT)
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    return cancelled_at


def assert_gone_in_time(pids: list[int], cancelled_at: float) -> None:
    assert pids
    for pid in pids:
        assert gone_within(pid, cancelled_at + STOPPED_WITHIN - time.monotonic()), (
            f"worker {pid} still runs"
        )


# -- cancelling an awaited job ------------------------------------------------------------------------------
def test_cancelling_the_task_awaiting_a_job_kills_its_worker(pool: TaskPool) -> None:
    started = StartedPids()
    pool.on("job_started", started)
    futures: list[JobFuture[float]] = []

    async def wait_for_job() -> float:
        futures.append(pool.submit(jobs.sleep_for, 60))
        return await futures[0]

    cancelled_at = run(cancel_after_start(wait_for_job(), started))
    assert_gone_in_time(started.pids, cancelled_at)
    futures[0].wait(TIMEOUT)
    assert futures[0].cancelled()
    assert pool.submit(jobs.square, 3).result(TIMEOUT) == 9  # the worker was replaced


def test_cancelling_a_wait_for_with_a_timeout_stops_the_job(pool: TaskPool) -> None:
    started = StartedPids()
    pool.on("job_started", started)

    async def main() -> JobFuture[float]:
        future = pool.submit(jobs.sleep_for, 60)
        assert await asyncio.to_thread(started.reached.wait, TIMEOUT)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(future, 0.01)
        return future

    future = run(main())
    assert gone_within(started.pids[0], STOPPED_WITHIN)
    future.wait(TIMEOUT)
    assert future.cancelled()


def test_on_threads_a_cancelled_running_job_runs_to_its_end_and_one_not_started_is_cancelled(
    thread_pool: TaskPool,
) -> None:
    started = StartedPids()
    thread_pool.on("job_started", started)
    block = threading.Event()

    async def main() -> tuple[JobFuture[bool], JobFuture[int]]:
        running = thread_pool.submit(jobs.wait_for_event, block)
        waiting = thread_pool.submit(jobs.square, 2)  # behind it: the pool has one thread
        await cancel_after_start(asyncio.gather(running, waiting), started)
        return running, waiting

    running, waiting = run(main())
    assert waiting.cancelled()
    assert not running.done()
    block.set()
    assert running.result(TIMEOUT) is True


# -- as_completed_async ---------------------------------------------------------------------------------------
def test_as_completed_async_yields_jobs_as_they_finish() -> None:
    two = TaskPool(2, backend="thread")
    block = threading.Event()

    async def main() -> list[Any]:
        futures: list[JobFuture[Any]] = [
            two.submit(jobs.wait_for_event, block),
            two.submit(jobs.square, 3),
        ]
        order = []
        async for future in as_completed_async(futures, timeout=TIMEOUT):
            order.append(future.result())
            block.set()  # the slow job can finish only now, so the loop is not blocked while it waits
        return order

    try:
        assert run(main()) == [9, True]
    finally:
        two.shutdown()


def test_cancelling_as_completed_async_kills_the_workers_of_jobs_not_yielded(
    pool: TaskPool,
) -> None:
    started = StartedPids(count=2)
    pool.on("job_started", started)

    async def consume() -> None:
        futures = [pool.submit(jobs.sleep_for, 60) for _ in range(2)]
        async for _ in as_completed_async(futures):
            pass

    cancelled_at = run(cancel_after_start(consume(), started))
    assert_gone_in_time(started.pids, cancelled_at)
    assert pool.submit(jobs.square, 4).result(TIMEOUT) == 16


# -- amap --------------------------------------------------------------------------------------------------
def test_amap_yields_results_in_input_order(any_pool: TaskPool) -> None:
    async def main() -> list[int]:
        return [r async for r in any_pool.amap(jobs.square, range(20), chunksize=3)]

    assert run(main()) == [i * i for i in range(20)]


def test_amap_of_an_empty_input_yields_nothing(any_pool: TaskPool) -> None:
    async def main() -> list[int]:
        return [r async for r in any_pool.amap(jobs.square, [])]

    assert run(main()) == []


def test_amap_reads_an_endless_input_lazily_with_a_bounded_window(any_pool: TaskPool) -> None:
    read = itertools.count()

    async def main() -> list[int]:
        results = []
        async with contextlib.aclosing(any_pool.amap(jobs.identity, read)) as mapped:
            async for value in mapped:
                results.append(value)
                if len(results) == 10:
                    break
        return results

    assert run(main()) == list(range(10))
    assert next(read) <= 10 + 4 * 256 * any_pool.workers  # what imap's window allows, and no more


def test_amap_does_not_block_the_loop_while_a_job_runs(pool: TaskPool) -> None:
    # The job ends only when a task of this loop sets the event, after the job has started; if amap blocked
    # the loop, that task could not run and the job would wait until its own timeout (and return False).
    started = StartedPids()
    pool.on("job_started", started)
    event = pool.shared.event()

    async def set_once_started() -> None:
        assert await asyncio.to_thread(started.reached.wait, TIMEOUT)
        event.set()

    async def main() -> list[bool]:
        setter = asyncio.ensure_future(set_once_started())
        results = [r async for r in pool.amap(jobs.wait_for_event, [event])]
        await setter
        return results

    assert run(main()) == [True]


def test_amap_raises_the_first_failing_job_error_in_input_order(any_pool: TaskPool) -> None:
    async def main() -> list[int]:
        results = []
        async for value in any_pool.amap(jobs.raise_if_negative, [1, 2, -3, 4]):
            results.append(value)
        return results

    with pytest.raises(ValueError, match="-3"):
        run(main())


def test_amap_raises_the_input_error_after_the_results_before_it(any_pool: TaskPool) -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("input broke")

    results: list[int] = []

    async def main() -> None:
        async for value in any_pool.amap(jobs.square, items()):
            results.append(value)

    with pytest.raises(KeyError, match="input broke"):
        run(main())
    assert results == [1, 4]


def test_amap_waits_for_room_under_max_pending_without_blocking_the_loop() -> None:
    pool = TaskPool(1, backend="thread", max_pending=1)
    block = threading.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        block.set()  # the other caller's job ends only if the loop runs this while amap waits for room

    async def main() -> list[int]:
        other = pool.submit(jobs.wait_for_event, block)  # takes the one slot
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(tick()))
        results = [r async for r in pool.amap(jobs.square, range(5))]
        assert await other is True
        return results

    try:
        assert run(main()) == [0, 1, 4, 9, 16]
        assert ticks == 1
    finally:
        pool.shutdown()


def test_cancelling_amap_kills_the_workers_of_its_jobs(pool: TaskPool) -> None:
    started = StartedPids(count=2)
    pool.on("job_started", started)

    async def consume() -> None:
        async for _ in pool.amap(jobs.sleep_for, [60, 60, 60]):
            pass

    cancelled_at = run(cancel_after_start(consume(), started))
    assert_gone_in_time(started.pids, cancelled_at)
    assert pool.submit(jobs.square, 5).result(TIMEOUT) == 25


def test_closing_amap_early_cancels_its_jobs_not_started(thread_pool: TaskPool) -> None:
    succeeded: list[object] = []
    thread_pool.on("job_succeeded", succeeded.append)
    started = StartedPids(count=2)
    thread_pool.on("job_started", started)
    go, block = threading.Event(), threading.Event()
    go.set()

    async def main() -> None:
        async with contextlib.aclosing(
            thread_pool.amap(jobs.wait_for_event, [go, block, go, go])
        ) as mapped:
            async for _ in mapped:
                assert await asyncio.to_thread(started.reached.wait, TIMEOUT)
                break  # the second job runs (it waits for `block`); the last two have not started

    run(main())
    block.set()
    thread_pool.shutdown()
    assert len(succeeded) == 2


# -- async with ---------------------------------------------------------------------------------------------
def test_async_with_waits_for_the_jobs_while_the_loop_stays_responsive() -> None:
    # The job ends only when a task of this loop sets the event, after the block's exit has begun to wait.
    block = threading.Event()

    async def release() -> None:
        block.set()

    async def main() -> bool:
        async with TaskPool(1, backend="thread") as pool:
            future = pool.submit(jobs.wait_for_event, block, 10.0)
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(release()))
        return await future

    assert run(main()) is True
