"""Where a job was stuck: the worker's stacks, taken before a kill on timeout or stop (process backend)."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable

import pytest

import taskpool
from taskpool import Event, JobTimeoutError, TaskPool

from .. import _stuck_jobs as sj

pytestmark = pytest.mark.timeout(60)

# Seconds any single blocking call in these tests may take; far above what each needs.
TIMEOUT = 20.0
JOB_TIMEOUT = 0.5
# How long after its deadline a job may fail: the stack capture (50 ms at most), the kill, the reap and the
# event thread, on a loaded machine. Loose on purpose: a kill that waited for the job would take 60 s.
KILL_SLACK = 1.0


def _time_out(pool: TaskPool, fn: Callable[[], object]) -> tuple[JobTimeoutError, float]:
    """Run ``fn`` with a timeout it overruns: its error, and the seconds from its start to its failure."""
    started: list[float] = []
    failed: list[float] = []
    pool.on("job_started", lambda e: started.append(e.time))
    pool.on("job_failed", lambda e: failed.append(e.time))
    future = pool.options(timeout=JOB_TIMEOUT).submit(fn)
    with pytest.raises(JobTimeoutError) as info:
        future.result(timeout=TIMEOUT)
    return info.value, failed[0] - started[0]


def test_timeout_names_the_function_it_was_stuck_in(pool: TaskPool) -> None:
    error, took = _time_out(pool, sj.calls_stuck_in_here)
    assert error.stack is not None
    assert "in stuck_in_here\n" in error.stack
    assert "_stuck_jobs.py" in error.stack
    assert error.where is not None
    assert error.where.startswith("stuck_in_here (_stuck_jobs.py:")
    assert "<- calls_stuck_in_here (_stuck_jobs.py:" in error.where
    assert "stuck_in_here (_stuck_jobs.py:" in str(error)
    assert "worker.py" not in error.where  # taskpool's own frames are left out
    assert took < JOB_TIMEOUT + KILL_SLACK


def test_a_job_holding_the_gil_is_killed_on_time_with_its_stack(pool: TaskPool) -> None:
    """``sum`` over a huge range never releases the GIL; the stack is taken without it, and the kill is
    not held back."""
    error, took = _time_out(pool, sj.hold_the_gil)
    assert error.where is not None
    assert error.where.startswith("hold_the_gil (")
    assert "hold_the_gil" in str(error)
    print(f"\nkilled {took - JOB_TIMEOUT:.3f} s after its timeout")
    assert took < JOB_TIMEOUT + KILL_SLACK
    assert pool.submit(sj.pid).result(timeout=TIMEOUT) > 0  # the worker was replaced


def test_a_job_that_took_the_signal_is_killed_on_time_without_a_stack() -> None:
    with TaskPool(1) as pool:
        error, took = _time_out(pool, sj.ignores_the_stack_signal)
    assert error.stack is None
    assert error.where is None
    assert "ran longer than its timeout" in str(error)
    assert took < JOB_TIMEOUT + KILL_SLACK


def test_stop_hands_the_stack_to_job_cancelled() -> None:
    with TaskPool(1) as pool:
        cancelled: list[Event] = []
        exited: list[Event] = []
        pool.on("job_cancelled", cancelled.append)
        pool.on("worker_exited", exited.append)
        running = pool.shared.event()
        future = pool.submit(sj.started_then_stuck, running)
        assert running.wait(TIMEOUT)
        assert future.stop()
        with pytest.raises(cf.CancelledError):
            future.result(timeout=TIMEOUT)
        assert pool.submit(sj.pid).result(timeout=TIMEOUT) > 0
    [event] = cancelled
    assert event.stack is not None
    # The job's own frame; the innermost may still be the shared event's round trip, which set() makes.
    assert "in started_then_stuck\n" in event.stack
    assert next(e.reason for e in exited) == "killed: job 'started_then_stuck' was stopped"


def test_spawn_timeout_names_the_function_it_was_stuck_in() -> None:
    exited = threading.Event()
    reasons: list[str | None] = []

    def on_exit(e: Event) -> None:
        reasons.append(e.reason)
        exited.set()

    future = taskpool.spawn.options(timeout=JOB_TIMEOUT, on={"worker_exited": on_exit})(
        sj.calls_stuck_in_here
    )
    with pytest.raises(JobTimeoutError) as info:
        future.result(timeout=TIMEOUT)
    assert info.value.where is not None
    assert info.value.where.startswith("stuck_in_here (_stuck_jobs.py:")
    assert "_call_pickled" not in info.value.where  # spawn's own frame is taskpool's, left out
    assert exited.wait(TIMEOUT)
    assert reasons == ["killed: job 'calls_stuck_in_here' ran past its timeout of 0.5 s"]


def test_a_dump_too_long_to_wait_for_does_not_hold_the_kill_back() -> None:
    """Sixty threads deep in calls take longer to dump than the scheduler waits: the kill comes on time."""
    with TaskPool(1) as pool:
        error, took = _time_out(pool, sj.many_deep_threads)
    assert error.stack is not None  # what was written in time
    assert took < JOB_TIMEOUT + KILL_SLACK
