"""Cancelled jobs never hold up the end of a pool: `join`, `shutdown(cancel_futures=True)` and the executor's
``shutdown`` return as soon as the jobs that were not cancelled have finished, under every start method.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from taskpool import Event, JobFuture, TaskPool

from .. import _failure_jobs as fj
from .. import jobs

pytestmark = pytest.mark.timeout(60)

# Seconds any single blocking call in these tests may take; far above what each needs.
TIMEOUT = 20.0
JOBS = 50


def _returns_in_time(call: Callable[[], None]) -> bool:
    """Run ``call`` in a thread; whether it returned within TIMEOUT (a hang fails the test, not the run)."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    return not thread.is_alive()


def _assert_settled(futures: list[JobFuture[float]]) -> None:
    """Every future ended: the cancelled ones cancelled, the others with their value."""
    for future in futures:
        assert future.done()
        if not future.cancelled():
            assert future.result(timeout=0) == 0.05


def test_cancelled_jobs_never_hang_join(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method)
    try:
        futures = [pool.submit(jobs.sleep_for, 0.05) for _ in range(JOBS)]
        cancelled = sum(f.cancel() for f in futures)
        assert cancelled > 0
        pool.close()
        assert pool.join(TIMEOUT), [f for f in futures if not f.done()]
        _assert_settled(futures)
    finally:
        pool.terminate()


def test_jobs_cancelled_behind_running_jobs_are_each_reported_once(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method)
    try:
        cancelled_events: list[Event] = []
        pool.on("job_cancelled", cancelled_events.append)
        release = pool.shared.event()
        running = [pool.submit(fj.wait_then_return, release, i) for i in range(2)]
        queued = [pool.submit(jobs.square, i) for i in range(JOBS)]
        # A worker may have been handed one job to hold behind its running one before the cancel came: that
        # job is running already, and runs.
        cancelled = [f for f in queued if f.cancel()]
        assert len(cancelled) >= JOBS - 2
        release.set()
        pool.close()
        assert pool.join(TIMEOUT)
        assert [f.result(timeout=0) for f in running] == [0, 1]
        assert all(f.cancelled() for f in cancelled)
        assert all(f.result(timeout=0) == i * i for i, f in enumerate(queued) if f not in cancelled)
        assert sorted(e.job_id or 0 for e in cancelled_events) == sorted(
            f.job_id for f in cancelled
        )
    finally:
        pool.terminate()


def test_cancelled_jobs_never_hang_pool_shutdown_with_cancel_futures(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method)
    try:
        futures = [pool.submit(jobs.sleep_for, 0.05) for _ in range(JOBS)]
        assert _returns_in_time(lambda: pool.shutdown(cancel_futures=True))
        _assert_settled(futures)
        assert any(f.cancelled() for f in futures)
    finally:
        pool.terminate()


def test_cancelled_jobs_never_hang_executor_shutdown_with_cancel_futures(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method)
    try:
        executor = pool.as_executor()
        futures = [executor.submit(jobs.sleep_for, 0.05) for _ in range(JOBS)]
        assert _returns_in_time(lambda: executor.shutdown(wait=True, cancel_futures=True))
        _assert_settled(futures)  # type: ignore[arg-type]
        assert any(f.cancelled() for f in futures)
    finally:
        pool.terminate()
