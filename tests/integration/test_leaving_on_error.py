"""Leaving a pool's block by an exception: every job that has not begun is cancelled, those a worker holds
ahead of the one it runs included; running jobs finish; then the exception goes on. `shutdown(cancel_futures=True)`
cancels the same jobs. A normal exit still runs every job.

The jobs block on a shared event that a helper thread sets once the jobs no worker held are reported
cancelled; a job a worker holds is skipped when that worker would have begun it, after the running job. Were it
not skipped, it would run then, and the counts below fail.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from taskpool import Event, JobFuture, TaskPool

from .. import _failure_jobs as fj

pytestmark = pytest.mark.timeout(90)

TIMEOUT = 20.0
JOBS = 8
WORKERS = 2


class _Watch:
    """Counts job_started and job_cancelled events (event thread); the test thread waits on them."""

    def __init__(self, pool: TaskPool) -> None:
        self.started = threading.Semaphore(0)
        self.cancelled: list[Event] = []
        self.queued_cancelled = threading.Event()
        self.expected = JOBS
        pool.on("job_started", lambda _e: self.started.release())
        pool.on("job_cancelled", self._on_cancelled)

    def _on_cancelled(self, event: Event) -> None:
        self.cancelled.append(event)
        if len(self.cancelled) >= self.expected:
            self.queued_cancelled.set()

    def wait_started(self, count: int) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=TIMEOUT), "the first jobs did not start"


def _release_after(watch: _Watch, release: Any, held: list[bool]) -> threading.Thread:
    """Set ``release`` once every job no worker ``held`` was reported cancelled (or TIMEOUT passed)."""
    watch.expected = held.count(False)
    if len(watch.cancelled) >= watch.expected:
        watch.queued_cancelled.set()

    def run() -> None:
        watch.queued_cancelled.wait(TIMEOUT)
        release.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _fill(pool: TaskPool) -> tuple[Any, list[JobFuture[int]], _Watch]:
    """Submit JOBS blocking jobs on two workers and wait until one runs on each worker."""
    watch = _Watch(pool)
    release = pool.shared.event()
    futures = [pool.submit(fj.wait_then_return, release, i) for i in range(JOBS)]
    watch.wait_started(WORKERS)
    return release, futures, watch


def _check(futures: list[JobFuture[int]], held: list[bool], watch: _Watch) -> None:
    """Two jobs ran; every other was cancelled, once, those held by a worker included."""
    assert sum(held) > WORKERS, "no job was held by a worker ahead of a running one"
    finished = [f for f in futures if not f.cancelled()]
    assert len(finished) == WORKERS
    assert all(f.result(timeout=0) in range(JOBS) for f in finished)
    cancelled_ids = sorted(e.job_id or 0 for e in watch.cancelled)
    assert cancelled_ids == sorted(f.job_id for f in futures if f.cancelled())
    assert len(cancelled_ids) == JOBS - WORKERS


def _body(pool: TaskPool, state: dict[str, Any]) -> None:
    """The block's body: fill the pool, note which jobs workers hold, then fail."""
    release, futures, watch = _fill(pool)
    held = [f.running() for f in futures]
    state.update(futures=futures, watch=watch, held=held)
    _release_after(watch, release, held)
    raise RuntimeError("the block failed")


def _leave_block_by_error(make_pool: Callable[[], TaskPool]) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def block() -> None:
        with make_pool() as pool:
            _body(pool, state)

    with pytest.raises(RuntimeError, match="the block failed"):
        block()
    return state


def test_an_exception_in_the_block_cancels_every_job_not_begun(start_method: str) -> None:
    state = _leave_block_by_error(lambda: TaskPool(WORKERS, start_method=start_method))
    _check(state["futures"], state["held"], state["watch"])


def test_an_exception_in_an_async_block_cancels_every_job_not_begun() -> None:
    state: dict[str, Any] = {}

    async def block() -> None:
        async with TaskPool(WORKERS) as pool:
            _body(pool, state)

    with pytest.raises(RuntimeError, match="the block failed"):
        asyncio.run(block())
    _check(state["futures"], state["held"], state["watch"])


def test_shutdown_with_cancel_futures_cancels_jobs_held_by_workers() -> None:
    pool = TaskPool(WORKERS)
    try:
        release, futures, watch = _fill(pool)
        held = [f.running() for f in futures]
        _release_after(watch, release, held)
        pool.shutdown(wait=True, cancel_futures=True)
        _check(futures, held, watch)
    finally:
        pool.terminate()


def test_an_exception_in_a_thread_pool_block_cancels_every_job_not_begun() -> None:
    state: dict[str, Any] = {}

    def block() -> None:
        with TaskPool(WORKERS, backend="thread") as pool:
            release = threading.Event()
            watch = _Watch(pool)
            futures = [pool.submit(fj.wait_then_return, release, i) for i in range(JOBS)]
            watch.wait_started(WORKERS)
            state.update(futures=futures, watch=watch)
            # A job thread reports a cancelled job only when it takes it, after the running ones: release
            # once the futures of the queued jobs are cancelled (their done-callbacks run at cancel()).
            cancelled = threading.Semaphore(0)
            for future in futures:
                future.add_done_callback(lambda f: cancelled.release() if f.cancelled() else None)

            def release_when_cancelled() -> None:
                for _ in range(JOBS - WORKERS):
                    if not cancelled.acquire(timeout=TIMEOUT):
                        break
                release.set()

            threading.Thread(target=release_when_cancelled, daemon=True).start()
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError, match="the block failed"):
        block()
    futures, watch = state["futures"], state["watch"]
    assert [f.cancelled() for f in futures].count(False) == WORKERS
    assert len(watch.cancelled) == JOBS - WORKERS


def test_a_normal_exit_still_runs_every_job() -> None:
    with TaskPool(WORKERS) as pool:
        release = pool.shared.event()
        futures = [pool.submit(fj.wait_then_return, release, i) for i in range(JOBS)]
        release.set()
    assert [f.result(timeout=0) for f in futures] == list(range(JOBS))
