"""Events: order per job, one terminal event per job, retries, the event thread, isolation of failing handlers."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import pytest

from taskpool import Event, JobFuture, Retry, TaskPool, WorkerCrashedError

from .. import _task_jobs as jobs
from .. import jobs as basic

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = 30.0
JOB_KINDS = (
    "job_submitted",
    "job_started",
    "job_succeeded",
    "job_failed",
    "job_retrying",
    "job_cancelled",
)


class Recorder:
    """Records every job event with the thread and process that ran the handler (event thread)."""

    def __init__(self, pool: TaskPool, kinds: tuple[str, ...] = JOB_KINDS) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self.pids: set[int] = set()
        for kind in kinds:
            pool.on(kind, self)  # type: ignore[arg-type]

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.threads.add(threading.current_thread().name)
        self.pids.add(os.getpid())

    def of(self, job_id: int) -> list[str]:
        return [e.kind for e in self.events if e.job_id == job_id]


def test_events_arrive_in_order_per_job(any_pool: TaskPool) -> None:
    rec = Recorder(any_pool)
    ok = [any_pool.submit(basic.square, i) for i in range(5)]
    bad: list[JobFuture[None]] = [any_pool.submit(basic.raise_value_error, i) for i in range(3)]
    assert [f.result(TIMEOUT) for f in ok] == [i * i for i in range(5)]
    for b in bad:
        with pytest.raises(ValueError, match="bad value"):
            b.result(TIMEOUT)
    # A future completes after its handlers have run, so every event is recorded by now.
    for f in ok:
        assert rec.of(f.job_id) == ["job_submitted", "job_started", "job_succeeded"]
    for b in bad:
        assert rec.of(b.job_id) == ["job_submitted", "job_started", "job_failed"]
    succeeded = {e.job_id: e for e in rec.events if e.kind == "job_succeeded"}
    assert [succeeded[f.job_id].result for f in ok] == [i * i for i in range(5)]
    failed = [e for e in rec.events if e.kind == "job_failed"]
    assert all(isinstance(e.exception, ValueError) and e.attempt == 1 for e in failed)
    assert rec.threads == {"taskpool-events"}
    assert rec.pids == {os.getpid()}


def test_job_events_carry_worker_and_name(pool: TaskPool) -> None:
    rec = Recorder(pool)
    future = pool.options(name="named").submit(basic.getpid)
    worker_pid = future.result(TIMEOUT)
    started = next(e for e in rec.events if e.kind == "job_started")
    assert started.pid == worker_pid
    assert started.worker is not None
    assert {e.name for e in rec.events} == {"named"}
    assert all(e.time > 0 for e in rec.events)


def test_retries_emit_job_retrying_and_one_terminal_event(
    any_pool: TaskPool, tmp_path: Path
) -> None:
    rec = Recorder(any_pool)
    view = any_pool.options(retry=Retry(attempts=3, on=(ValueError,)))
    passes = view.submit(jobs.retry_then, str(tmp_path / "a"), 2, 7)
    gives_up = view.submit(jobs.retry_then, str(tmp_path / "b"), 5, 7)
    assert passes.result(TIMEOUT) == 7
    assert passes.attempts == 3
    with pytest.raises(ValueError, match="attempt 3"):
        gives_up.result(TIMEOUT)
    assert rec.of(passes.job_id) == [
        "job_submitted", "job_started", "job_retrying", "job_started", "job_retrying", "job_started", "job_succeeded",
    ]  # fmt: skip
    assert rec.of(gives_up.job_id)[-1] == "job_failed"
    assert rec.of(gives_up.job_id).count("job_retrying") == 2
    retrying = [e for e in rec.events if e.kind == "job_retrying" and e.job_id == passes.job_id]
    assert [e.attempt for e in retrying] == [1, 2]
    assert all(isinstance(e.exception, ValueError) and e.delay == 0 for e in retrying)


def test_a_crash_fails_the_job_and_reports_the_worker(pool: TaskPool) -> None:
    rec = Recorder(pool, (*JOB_KINDS, "worker_started", "worker_exited"))
    future = pool.submit(basic.exit_worker, 3)
    with pytest.raises(WorkerCrashedError):
        future.result(TIMEOUT)
    assert pool.submit(basic.square, 3).result(TIMEOUT) == 9
    assert rec.of(future.job_id) == ["job_submitted", "job_started", "job_failed"]
    exited = [e for e in rec.events if e.kind == "worker_exited"]
    assert [e.exitcode for e in exited] == [3]


def test_a_cancelled_job_gets_job_cancelled_only() -> None:
    with TaskPool(1, backend="thread") as pool:
        rec = Recorder(pool)
        gate = threading.Event()
        blocker = pool.submit(gate.wait, TIMEOUT)
        waiting = pool.submit(basic.square, 2)
        assert waiting.cancel()
        gate.set()
        assert blocker.result(TIMEOUT) is True
    assert rec.of(waiting.job_id) == ["job_submitted", "job_cancelled"]


def test_a_raising_handler_is_logged_with_the_job_id_and_isolated(
    any_pool: TaskPool, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int | None] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    any_pool.on("job_succeeded", broken)
    any_pool.on("job_succeeded", lambda e: seen.append(e.job_id))
    with caplog.at_level(logging.ERROR, logger="taskpool"):
        futures = [any_pool.submit(basic.square, i) for i in range(3)]
        assert [f.result(TIMEOUT) for f in futures] == [0, 1, 4]
    # The next handler still ran, for every job.
    assert sorted(e or 0 for e in seen) == [f.job_id for f in futures]
    errors = [r for r in caplog.records if r.name == "taskpool" and "handler" in r.getMessage()]
    assert len(errors) == 3
    messages = sorted(m.getMessage() for m in errors)
    assert messages == sorted(
        f"an event handler for job_succeeded (job {f.job_id}) raised; the pool goes on"
        for f in futures
    )
    assert errors[0].exc_info is not None
    assert "handler bug" in str(errors[0].exc_info[1])


def test_an_unknown_kind_is_refused_with_the_list_of_kinds(any_pool: TaskPool) -> None:
    with pytest.raises(ValueError, match="job_succeeded") as info:
        any_pool.on("job_done", print)  # type: ignore[arg-type]
    assert "unknown event kind 'job_done'" in str(info.value)
    assert "worker_exited" in str(info.value)
    with pytest.raises(TypeError, match="callable"):
        any_pool.on("job_failed", 5)  # type: ignore[arg-type]


def test_the_remover_and_off_stop_a_handler(any_pool: TaskPool) -> None:
    seen: list[int | None] = []

    def handler(e: Event) -> None:
        seen.append(e.job_id)

    remove = any_pool.on("job_succeeded", handler)
    first = any_pool.submit(basic.square, 1)
    first.result(TIMEOUT)
    remove()
    any_pool.submit(basic.square, 2).result(TIMEOUT)
    assert seen == [first.job_id]
    assert any_pool.off("job_succeeded", handler) is False
    started: list[int | None] = []
    any_pool.on("job_started", lambda e: started.append(e.job_id))
    third = any_pool.submit(basic.square, 3)
    third.result(TIMEOUT)
    assert started == [third.job_id]


def test_on_and_off_at_the_same_time_never_leave_a_handler_that_never_fires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """off() of the last job_started handler and on() of a new one, interleaved: the backend ends up told to
    report starts, because the handler list and what the backend is told change as one step."""
    told: list[bool] = []
    in_off, release = threading.Event(), threading.Event()
    with TaskPool(1, backend="thread") as pool:
        real = pool._backend.want_started

        def want_started(enabled: bool) -> None:
            if not enabled:
                in_off.set()
                release.wait(10)
            told.append(enabled)
            real(enabled)

        first: list[Event] = []
        pool.on("job_started", first.append)
        monkeypatch.setattr(pool._backend, "want_started", want_started)
        off = threading.Thread(target=pool.off, args=("job_started", first.append))
        off.start()
        assert in_off.wait(10)
        second: list[Event] = []
        on = threading.Thread(target=pool.on, args=("job_started", second.append))
        on.start()
        on.join(0.2)  # without the lock, on() would finish here, before off() stores its decision
        release.set()
        off.join(10)
        on.join(10)
        assert told[-1] is True
        pool.submit(basic.square, 3).result(timeout=10)
    assert [e.kind for e in second] == ["job_started"]


def test_a_job_whose_outcome_outlived_its_crashed_worker_still_gets_job_started_first() -> None:
    """One worker runs a job, then the next job crashes it before the first one's start report went out:
    the first job's outcome survives the crash, and its events still read submitted, started, succeeded."""
    for _ in range(
        5
    ):  # the start report is lost only when the crash comes before the flush: try a few
        seen: dict[int, list[str]] = {}

        def record(event: Event, seen: dict[int, list[str]] = seen) -> None:
            seen.setdefault(event.job_id or 0, []).append(event.kind)

        with TaskPool(1) as pool:
            for kind in ("job_submitted", "job_started", "job_succeeded", "job_failed"):
                pool.on(kind, record)
            ok = pool.submit(basic.square, 4)
            crash = pool.submit(basic.exit_worker, 3)
            assert ok.result(timeout=30) == 16
            with pytest.raises(WorkerCrashedError):
                crash.result(timeout=30)
        assert seen[ok.job_id] == ["job_submitted", "job_started", "job_succeeded"]
        assert seen[crash.job_id] == ["job_submitted", "job_started", "job_failed"]
