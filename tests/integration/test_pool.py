"""TaskPool's core API on real pools: every start method for processes, and the thread and inline backends."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import threading
from typing import Any

import pytest

from taskpool import JobFuture, PoolClosedError, PoolState, RemoteTraceback, TaskPool
from tests import jobs

TIMEOUT = 30


def test_submit_returns_a_typed_future(pool: TaskPool) -> None:
    future = pool.submit(jobs.square, 7)
    assert isinstance(future, JobFuture)
    assert isinstance(future, cf.Future)
    assert future.result(TIMEOUT) == 49
    assert future.get(TIMEOUT) == 49
    assert future.ready()
    assert future.successful()
    assert future.attempts == 1


def test_submit_passes_positional_and_keyword_arguments(any_pool: TaskPool) -> None:
    future = any_pool.submit(jobs.echo_kwargs, 1, "two", three=3)
    assert future.result(TIMEOUT) == ((1, "two"), {"three": 3})


def test_apply_returns_or_raises_like_the_call(any_pool: TaskPool) -> None:
    assert any_pool.apply(jobs.add, (2, 3)) == 5
    assert any_pool.apply(jobs.echo_kwargs, (), {"k": 1}) == ((), {"k": 1})
    with pytest.raises(ValueError, match="bad value") as info:
        any_pool.apply(jobs.raise_value_error, (9,))
    assert info.value.args == ("bad value", 9)


def test_remote_exception_carries_the_worker_traceback(pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="bad value") as info:
        pool.submit(jobs.raise_value_error, 1).result(TIMEOUT)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise_value_error" in str(cause)
    assert "Traceback" in str(cause)


def test_apply_async_callback_runs_in_the_parent_before_get_returns(any_pool: TaskPool) -> None:
    seen: list[tuple[int, str, int]] = []
    future = any_pool.apply_async(
        jobs.square,
        (4,),
        callback=lambda v: seen.append((os.getpid(), threading.current_thread().name, v)),
    )
    assert future.get(TIMEOUT) == 16
    assert seen == [(os.getpid(), "taskpool-events", 16)]


def test_apply_async_error_callback_gets_the_exception(any_pool: TaskPool) -> None:
    errors: list[BaseException] = []
    ok: list[object] = []
    future = any_pool.apply_async(
        jobs.raise_value_error, (5,), callback=ok.append, error_callback=errors.append
    )
    with pytest.raises(ValueError, match="bad value"):
        future.get(TIMEOUT)
    assert ok == []
    assert len(errors) == 1
    assert isinstance(errors[0], ValueError)
    assert not future.successful()


def test_a_raising_callback_is_logged_and_the_pool_goes_on(
    any_pool: TaskPool, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_callback(_: object) -> None:
        raise RuntimeError("callback failure")

    future = any_pool.apply_async(jobs.square, (3,), callback=bad_callback)
    assert future.get(TIMEOUT) == 9
    assert any_pool.apply(jobs.square, (5,)) == 25
    assert any("callback" in r.getMessage() and r.exc_info for r in caplog.records)


def test_map_keeps_input_order_for_every_chunksize(any_pool: TaskPool) -> None:
    items = list(range(57))
    expected = [x * x for x in items]
    for chunksize in (None, 1, 2, 7, 100):
        assert any_pool.map(jobs.square, items, chunksize=chunksize) == expected
    assert any_pool.map(jobs.square, []) == []


def test_starmap_unpacks_arguments(any_pool: TaskPool) -> None:
    assert any_pool.starmap(jobs.add, [(1, 2), (3, 4), (5, 6)], chunksize=2) == [3, 7, 11]


def test_map_raises_the_first_failing_item(any_pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="-3") as info:
        any_pool.map(jobs.raise_if_negative, [1, 2, -3, 4, -5], chunksize=1)
    assert info.value.args == (-3,)


def test_imap_is_ordered_and_imap_unordered_is_a_permutation(any_pool: TaskPool) -> None:
    items = range(40)
    assert list(any_pool.imap(jobs.square, items, chunksize=3)) == [x * x for x in items]
    assert sorted(any_pool.imap_unordered(jobs.square, items, chunksize=3)) == [
        x * x for x in items
    ]
    assert list(any_pool.imap(jobs.square, [])) == []


def test_imap_raises_the_input_iterables_error_in_turn(any_pool: TaskPool) -> None:
    def items() -> Any:
        yield 1
        yield 2
        raise OSError("input broke")

    iterator = any_pool.imap(jobs.square, items())
    assert iterator.next(TIMEOUT) == 1
    assert iterator.next(TIMEOUT) == 4
    with pytest.raises(OSError, match="input broke"):
        iterator.next(TIMEOUT)


def test_imap_next_timeout_raises_multiprocessing_timeout(pool: TaskPool) -> None:
    event = pool.shared.event()
    iterator = pool.imap(jobs.wait_for_event, [event])
    with pytest.raises(multiprocessing.TimeoutError):
        iterator.next(0.05)
    event.set()
    assert iterator.next(TIMEOUT) is True


def test_lambdas_and_closures_run_in_processes(pool: TaskPool) -> None:
    offset = 10
    assert pool.submit(lambda x: x + offset, 5).result(TIMEOUT) == 15
    assert pool.map(lambda x: x * offset, [1, 2]) == [10, 20]


def test_the_future_is_awaitable_and_works_with_asyncio(pool: TaskPool) -> None:
    async def main() -> tuple[float, int]:
        direct = await pool.submit(jobs.square, 3)
        loop = asyncio.get_running_loop()
        via_executor = await loop.run_in_executor(pool.as_executor(), jobs.square, 4)
        return direct, via_executor

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == (9, 16)


def test_futures_work_with_concurrent_futures_helpers(pool: TaskPool) -> None:
    futures = [pool.submit(jobs.square, i) for i in range(10)]
    done, not_done = cf.wait(futures, timeout=TIMEOUT)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=TIMEOUT)) == [
        i * i for i in range(10)
    ]
    assert len(done) == 10


def test_two_workers_really_run_at_once(pool: TaskPool) -> None:
    barrier = pool.shared.barrier(2)
    futures = [pool.submit(barrier.wait, TIMEOUT) for _ in range(2)]
    assert sorted(f.result(TIMEOUT) for f in futures) == [0, 1]


def test_initializer_runs_in_every_worker(start_method: str) -> None:
    with TaskPool(
        2,
        start_method=start_method,
        initializer=jobs.set_env,
        initargs=("TP_INIT", "yes"),
    ) as p:
        assert p.apply(jobs.get_env, ("TP_INIT",)) == "yes"


def test_max_tasks_per_worker_replaces_workers(start_method: str) -> None:
    with TaskPool(1, start_method=start_method, max_tasks_per_worker=2) as p:
        pids = [p.apply(jobs.getpid) for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[0] == pids[1]
    assert pids[2] == pids[3]
    assert pids[4] == pids[5]


def test_close_then_submit_raises_and_join_waits(any_pool: TaskPool) -> None:
    futures = [any_pool.submit(jobs.square, i) for i in range(20)]
    any_pool.close()
    with pytest.raises(PoolClosedError, match="closed"):
        any_pool.submit(jobs.square, 1)
    with pytest.raises(ValueError, match="closed"):
        any_pool.apply(jobs.square, (1,))
    assert any_pool.join(TIMEOUT)
    assert [f.result(0) for f in futures] == [i * i for i in range(20)]
    assert any_pool.state is PoolState.CLOSED


def test_join_before_close_raises_and_the_pool_keeps_working(any_pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="close"):
        any_pool.join()
    assert any_pool.apply(jobs.square, (6,)) == 36


def test_bad_arguments_raise_at_once_and_the_pool_goes_on(any_pool: TaskPool) -> None:
    with pytest.raises(TypeError, match="callable"):
        any_pool.submit(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunksize"):
        any_pool.map(jobs.square, [1], chunksize=0)
    with pytest.raises(ValueError, match="chunksize"):
        any_pool.imap(jobs.square, [1], chunksize=-1)
    with pytest.raises(ValueError, match="unknown event kind"):
        any_pool.on("job_exploded", print)  # type: ignore[arg-type]
    assert any_pool.apply(jobs.square, (2,)) == 4


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers: Any) -> None:
    with pytest.raises(ValueError, match="workers"):
        TaskPool(workers)


def test_unknown_backend_and_start_method_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        TaskPool(1, backend="quantum")
    with pytest.raises(ValueError, match="start_method"):
        TaskPool(1, start_method="teleport")


def test_terminate_cancels_what_has_not_finished(pool: TaskPool) -> None:
    event = pool.shared.event()
    running = [pool.submit(jobs.wait_for_event, event) for _ in range(4)]
    pool.terminate()
    assert all(f.cancelled() for f in running)
    with pytest.raises(PoolClosedError, match="terminated"):
        pool.submit(jobs.square, 1)


def test_context_manager_closes_and_joins(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as p:
        futures = [p.submit(jobs.square, i) for i in range(5)]
    assert p.state is PoolState.CLOSED
    assert [f.result(0) for f in futures] == [0, 1, 4, 9, 16]


def test_large_bytes_arguments_and_results_arrive_intact(pool: TaskPool) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: sent out of band, both ways
    assert pool.submit(jobs.identity, big).result(TIMEOUT) == big
    assert pool.map(jobs.identity, [big, b"small", bytearray(big)], chunksize=3) == [
        big,
        b"small",
        bytearray(big),
    ]
    assert pool.submit(jobs.echo_kwargs, big, key=big).result(TIMEOUT) == ((big,), {"key": big})


# -- the conventions of the pools people know ------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_workers", "processes", "n_jobs"])
def test_other_pools_names_for_workers_say_to_use_workers(name: str) -> None:
    with pytest.raises(TypeError, match=r"number of workers is `workers`"):
        TaskPool(**{name: 2})  # type: ignore[arg-type]


def test_map_over_two_iterables_points_to_starmap(any_pool: TaskPool) -> None:
    with pytest.raises(TypeError, match=r"starmap\(fn, zip\(a, b\)\)"):
        any_pool.map(jobs.add, [1, 2], [3, 4])  # type: ignore[arg-type]
    assert any_pool.starmap(jobs.add, zip([1, 2], [3, 4], strict=False)) == [4, 6]


def test_shutdown_waits_like_an_executor(any_pool: TaskPool) -> None:
    future = any_pool.submit(jobs.square, 5)
    any_pool.shutdown(wait=True)
    assert future.result(timeout=0) == 25
    assert any_pool.state is PoolState.CLOSED
    with pytest.raises(PoolClosedError):
        any_pool.submit(jobs.square, 1)


def test_async_with_closes_and_joins_without_blocking_the_loop() -> None:
    async def main() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.ensure_future(ticker())
        async with TaskPool(2) as pool:
            future = pool.submit(jobs.sleep_for, 0.3)
        tick_task.cancel()
        return await future, ticks

    result, ticks = asyncio.run(main())
    assert result == 0.3
    assert ticks >= 5  # the loop ran while the exit waited for the job


def test_imap_unordered_progress_knows_the_total_of_a_sized_input(
    any_pool: TaskPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskpool._core import progress

    totals: list[int | None] = []
    real = progress.track

    def spy(futures: Any, spec: Any, total: int | None) -> Any:
        totals.append(total)
        return real(futures, spec, total=total)

    monkeypatch.setattr(progress, "track", spy)
    assert sorted(any_pool.imap_unordered(jobs.square, range(7), progress={"disable": True})) == [
        0,
        1,
        4,
        9,
        16,
        25,
        36,
    ]
    assert totals == [7]
