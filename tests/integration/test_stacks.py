"""Where a job was stuck: the worker's stacks, taken before a kill on timeout or stop (process backend)."""

from __future__ import annotations

import concurrent.futures as cf
import threading

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


def _time_to_failure(pool: TaskPool) -> dict[int, float]:
    """Seconds from each job's ``job_started`` to its ``job_failed``, by job id, filled in as they happen."""
    started: dict[int, float] = {}
    took: dict[int, float] = {}

    def on_started(e: Event) -> None:
        assert e.job_id is not None
        started[e.job_id] = e.time

    def on_failed(e: Event) -> None:
        assert e.job_id is not None
        took[e.job_id] = e.time - started[e.job_id]

    pool.on("job_started", on_started)
    pool.on("job_failed", on_failed)
    return took


def test_timeout_names_the_function_it_was_stuck_in(pool: TaskPool) -> None:
    took = _time_to_failure(pool)
    future = pool.options(timeout=JOB_TIMEOUT).submit(sj.calls_stuck_in_here)
    with pytest.raises(JobTimeoutError) as info:
        future.result(timeout=TIMEOUT)
    error = info.value
    assert error.stack is not None
    assert "in stuck_in_here\n" in error.stack
    assert "_stuck_jobs.py" in error.stack
    assert error.where is not None
    assert error.where.startswith("stuck_in_here (_stuck_jobs.py:")
    assert "<- calls_stuck_in_here (_stuck_jobs.py:" in error.where
    assert "stuck_in_here (_stuck_jobs.py:" in str(error)
    assert "worker.py" not in error.where  # taskpool's own frames are left out
    assert took[future.job_id] < JOB_TIMEOUT + KILL_SLACK


def test_a_job_holding_the_gil_is_killed_on_time_with_its_stack(pool: TaskPool) -> None:
    """``sum`` over a huge range never releases the GIL; the stack is taken without it, and the kill is
    not held back."""
    took = _time_to_failure(pool)
    future = pool.options(timeout=JOB_TIMEOUT).submit(sj.hold_the_gil)
    with pytest.raises(JobTimeoutError) as info:
        future.result(timeout=TIMEOUT)
    assert info.value.where is not None
    assert info.value.where.startswith("hold_the_gil (")
    assert "hold_the_gil" in str(info.value)
    print(f"\nkilled {took[future.job_id] - JOB_TIMEOUT:.3f} s after its timeout")
    assert took[future.job_id] < JOB_TIMEOUT + KILL_SLACK
    assert pool.submit(sj.pid).result(timeout=TIMEOUT) > 0  # the worker was replaced


def test_a_job_that_took_the_signal_is_killed_on_time_without_a_stack() -> None:
    with TaskPool(1) as pool:
        took = _time_to_failure(pool)
        future = pool.options(timeout=JOB_TIMEOUT).submit(sj.ignores_the_stack_signal)
        with pytest.raises(JobTimeoutError) as info:
            future.result(timeout=TIMEOUT)
        assert info.value.stack is None
        assert info.value.where is None
        assert "ran longer than its timeout" in str(info.value)
        assert took[future.job_id] < JOB_TIMEOUT + KILL_SLACK


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
        took = _time_to_failure(pool)
        future = pool.options(timeout=JOB_TIMEOUT).submit(sj.many_deep_threads)
        with pytest.raises(JobTimeoutError) as info:
            future.result(timeout=TIMEOUT)
        assert info.value.stack is not None  # what was written in time
        assert took[future.job_id] < JOB_TIMEOUT + KILL_SLACK
