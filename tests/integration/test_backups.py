"""Backup copies of stragglers (``backup_after``) on the process backend.

Each job here stalls (or fails) on its first copy only (see `tests._backup_jobs`), so a backup that starts
must win. Pools are warmed up first (both workers started), so that the time a job takes is its own, not a
worker's start.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from taskpool import Event, EventKind, Median, Retry, TaskPool

from .. import _backup_jobs as bj
from .. import _failure_jobs as fj
from .. import jobs

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0
JOB_KINDS: tuple[EventKind, ...] = (
    "job_started",
    "job_backup_started",
    "job_succeeded",
    "job_failed",
    "job_retrying",
    "job_cancelled",
    "worker_started",
    "worker_exited",
)


class Recorder:
    """Every event of `JOB_KINDS`, in order (appended on the event thread)."""

    def __init__(self, pool: TaskPool) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        for kind in JOB_KINDS:
            pool.on(kind, self._add)

    def _add(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, job_id: int, kind: str | None = None) -> list[Event]:
        return [e for e in self.events if e.job_id == job_id and kind in (None, e.kind)]

    def kinds(self, job_id: int) -> list[str]:
        return [e.kind for e in self.of(job_id)]

    def live_workers(self, before: set[Any]) -> set[Any]:
        """The workers up now: ``before`` (those up when the recording began) and the ones started since,
        less those that exited."""
        with self._cond:
            started = {e.worker for e in self.events if e.kind == "worker_started"}
            return (before | started) - {e.worker for e in self.events if e.kind == "worker_exited"}

    def wait_exit(self, worker: Any) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: any(e.kind == "worker_exited" and e.worker == worker for e in self.events),
                TIMEOUT,
            )


def warm(pool: TaskPool) -> None:
    """Start both workers (two jobs at once) and give the batching a job duration to go by."""
    assert pool.map(jobs.sleep_for, [0.1, 0.1], chunksize=1) == [0.1, 0.1]


def live_workers() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children()
        if "forkserver" not in " ".join(child.cmdline())
        and "resource_tracker" not in " ".join(child.cmdline())
    ]


@pytest.fixture
def backup_pool(start_method: str) -> Iterator[TaskPool]:
    p = TaskPool(2, start_method=start_method)
    try:
        warm(p)
        yield p
    finally:
        p.terminate()


@pytest.fixture
def warm_pool() -> Iterator[TaskPool]:
    p = TaskPool(2)
    try:
        warm(p)
        yield p
    finally:
        p.terminate()


def test_a_stalled_first_copy_loses_to_its_backup(backup_pool: TaskPool, tmp_path: Path) -> None:
    rec = Recorder(backup_pool)
    began = time.monotonic()
    future = backup_pool.options(backup_after=0.2).submit(bj.copies, str(tmp_path / "m"), 7)
    assert future.result(timeout=TIMEOUT) == 7
    took = time.monotonic() - began
    assert took < 0.2 + 2.0, f"the backup should have won soon after 0.2 s, took {took:.2f} s"
    assert future.attempts == 1
    assert rec.kinds(future.job_id) == ["job_started", "job_backup_started", "job_succeeded"]
    (started,) = rec.of(future.job_id, "job_started")
    (backup,) = rec.of(future.job_id, "job_backup_started")
    (succeeded,) = rec.of(future.job_id, "job_succeeded")
    assert backup.worker != started.worker
    assert succeeded.worker == backup.worker
    assert backup.attempt == started.attempt == 1
    # The loser (30 s into a sleep) is recalled: its worker is free again at once, and runs the next jobs.
    began = time.monotonic()
    pids = backup_pool.map(bj.sleep_for_pid, [0.3, 0.3], chunksize=1)
    assert time.monotonic() - began < 5.0
    assert set(pids) == {started.pid, backup.pid}
    assert [e for e in rec.events if e.kind == "worker_exited"] == []
    assert rec.of(future.job_id, "job_failed") == rec.of(future.job_id, "job_cancelled") == []


def test_a_loser_that_will_not_stop_has_its_worker_replaced(
    warm_pool: TaskPool, tmp_path: Path
) -> None:
    rec = Recorder(warm_pool)
    future = warm_pool.options(backup_after=0.2).submit(bj.stall_stubbornly, str(tmp_path / "m"), 5)
    assert future.result(timeout=TIMEOUT) == 5
    (started,) = rec.of(future.job_id, "job_started")
    assert rec.wait_exit(started.worker)  # killed once the recall's grace is over
    assert rec.kinds(future.job_id) == ["job_started", "job_backup_started", "job_succeeded"]
    pids = warm_pool.map(bj.sleep_for_pid, [0.3, 0.3], chunksize=1)
    assert len(set(pids)) == 2
    assert started.pid not in pids
    assert len(rec.live_workers({1, 2})) == 2


def test_a_copy_that_lost_while_queued_is_recalled_when_it_starts(
    warm_pool: TaskPool, tmp_path: Path
) -> None:
    # Tiny jobs first: workers may then hold several jobs, so the copy is queued behind a long one.
    assert warm_pool.map(jobs.square, range(40), chunksize=1) == [x * x for x in range(40)]
    rec = Recorder(warm_pool)
    future = warm_pool.options(backup_after=0.2).submit(
        bj.copies, str(tmp_path / "m"), 2, first=0.6, later=30.0
    )
    long_one = warm_pool.submit(bj.sleep_for_pid, 1.5)
    assert (
        future.result(timeout=TIMEOUT) == 2
    )  # the first copy wins while its copy waits in the other worker
    (started,) = rec.of(future.job_id, "job_started")
    busy_pid = long_one.result(timeout=TIMEOUT)
    assert busy_pid != started.pid
    # The lost copy starts there after the long job, and is recalled at once rather than run for 30 s.
    began = time.monotonic()
    # Two jobs that can only finish together: one of them has to run on the busy worker, behind the lost copy.
    barrier = warm_pool.shared.barrier(2)
    meet = [warm_pool.submit(fj.barrier_wait, barrier) for _ in range(2)]
    assert {f.result(timeout=TIMEOUT) for f in meet} == {started.pid, busy_pid}
    assert time.monotonic() - began < 5.0
    assert rec.kinds(future.job_id) == ["job_started", "job_succeeded"]
    assert [e for e in rec.events if e.kind == "worker_exited"] == []


def test_stop_ends_both_copies(warm_pool: TaskPool, tmp_path: Path) -> None:
    rec = Recorder(warm_pool)
    backup_began = threading.Event()
    warm_pool.on("job_backup_started", lambda e: backup_began.set())
    future = warm_pool.options(backup_after=0.2).submit(
        bj.copies, str(tmp_path / "m"), 0, first=30.0, later=30.0
    )
    assert backup_began.wait(TIMEOUT)
    assert future.stop()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=TIMEOUT)
    assert rec.kinds(future.job_id) == ["job_started", "job_backup_started", "job_cancelled"]
    began = time.monotonic()
    assert len(set(warm_pool.map(bj.sleep_for_pid, [0.3, 0.3], chunksize=1))) == 2
    assert time.monotonic() - began < 10.0
    assert len(rec.live_workers({1, 2})) == 2


def test_a_backup_copy_draws_the_seed_of_the_copy_it_backs_up(tmp_path: Path) -> None:
    with TaskPool(2, seed=7) as pool:
        warm(pool)
        marker = str(tmp_path / "m")
        seed = pool.options(backup_after=0.2).submit(bj.seed_copies, marker).result(timeout=TIMEOUT)
        assert seed == int(Path(marker + ".seed").read_text())


def test_a_backup_goes_ahead_of_queued_jobs(warm_pool: TaskPool, tmp_path: Path) -> None:
    rec = Recorder(warm_pool)
    stalled = warm_pool.options(backup_after=0.2).submit(bj.copies, str(tmp_path / "m"), 1)
    queued = [warm_pool.submit(jobs.sleep_for, 0.1) for _ in range(8)]
    assert stalled.result(timeout=TIMEOUT) == 1
    for f in queued:
        assert f.result(timeout=TIMEOUT) == 0.1
    order = [
        (e.kind, e.job_id) for e in rec.events if e.kind in ("job_started", "job_backup_started")
    ]
    backup_at = order.index(("job_backup_started", stalled.job_id))
    queued_ids = {f.job_id for f in queued}
    before = [job_id for kind, job_id in order[:backup_at] if job_id in queued_ids]
    # In queue order the copy would start after all eight; ahead of them, after the one or two that run
    # when it is made (one worker is the stalled job's), give or take one round of a slow machine.
    assert len(before) <= 5, order


def test_map_with_backup_after(warm_pool: TaskPool, tmp_path: Path) -> None:
    rec = Recorder(warm_pool)
    items = [(str(tmp_path / "m") if i == 5 else "", i) for i in range(12)]
    began = time.monotonic()
    assert warm_pool.options(backup_after=0.3).map(bj.stall_marked, items, chunksize=2) == list(
        range(12)
    )
    assert time.monotonic() - began < 10.0
    assert len([e for e in rec.events if e.kind == "job_backup_started"]) == 1
    assert [e for e in rec.events if e.kind in ("job_failed", "job_cancelled")] == []


def test_a_job_whose_copies_both_fail_fails_once_per_attempt(
    warm_pool: TaskPool, tmp_path: Path
) -> None:
    rec = Recorder(warm_pool)
    retry = Retry(attempts=2, on=(ValueError,))
    future = warm_pool.options(backup_after=0.2, retry=retry).submit(
        bj.copies, str(tmp_path / "m"), 0, first=1.0, first_fails=True, later_fails=True
    )
    error = future.exception(timeout=TIMEOUT)
    assert isinstance(error, ValueError)
    # Attempt 1: the backup fails first (dropped: the first copy still runs), then the first copy; one
    # failure, one retry. Attempt 2 fails at once, before any backup.
    assert rec.kinds(future.job_id) == [
        "job_started",
        "job_backup_started",
        "job_retrying",
        "job_started",
        "job_failed",
    ]
    assert future.attempts == 2


def test_a_failing_copy_does_not_fail_the_job_while_the_other_runs(
    warm_pool: TaskPool, tmp_path: Path
) -> None:
    rec = Recorder(warm_pool)
    future = warm_pool.options(backup_after=0.2).submit(
        bj.copies, str(tmp_path / "m"), 3, first=1.0, later_fails=True
    )
    assert future.result(timeout=TIMEOUT) == 3
    assert rec.kinds(future.job_id) == ["job_started", "job_backup_started", "job_succeeded"]
    (started,) = rec.of(future.job_id, "job_started")
    (succeeded,) = rec.of(future.job_id, "job_succeeded")
    assert succeeded.worker == started.worker  # the first copy won, after its backup failed


def test_the_timeout_applies_to_each_copy(warm_pool: TaskPool, tmp_path: Path) -> None:
    rec = Recorder(warm_pool)
    # The first copy times out at 1.0 s; the backup, started at about 0.3 s, needs 0.8 s of its own 1.0 s.
    future = warm_pool.options(timeout=1.0, backup_after=0.3).submit(
        bj.copies, str(tmp_path / "m"), 4, later=0.8
    )
    assert future.result(timeout=TIMEOUT) == 4
    assert rec.kinds(future.job_id) == ["job_started", "job_backup_started", "job_succeeded"]


def test_median_backs_up_a_job_far_slower_than_its_peers(
    warm_pool: TaskPool, tmp_path: Path
) -> None:
    rec = Recorder(warm_pool)
    view = warm_pool.options(backup_after=Median(3.0, min_samples=3))
    peers = []
    for i in range(4):  # jobs of the same function that take 0.05 s: their markers exist already
        (tmp_path / f"peer{i}").touch()
        peers.append(view.submit(bj.copies, str(tmp_path / f"peer{i}"), i, later=0.05))
    assert [f.result(timeout=TIMEOUT) for f in peers] == [0, 1, 2, 3]
    began = time.monotonic()
    assert view.submit(bj.copies, str(tmp_path / "m"), 9).result(timeout=TIMEOUT) == 9
    assert time.monotonic() - began < 5.0
    assert len([e for e in rec.events if e.kind == "job_backup_started"]) == 1


def test_a_job_stopped_while_queued_in_a_worker_reports_no_start(tmp_path: Path) -> None:
    with TaskPool(1) as pool:
        # Tiny jobs first, so that the worker may hold a second job queued behind the running one.
        assert pool.map(jobs.square, range(40), chunksize=1) == [x * x for x in range(40)]
        rec = Recorder(pool)
        running = pool.submit(jobs.sleep_for, 1.0)
        queued = pool.submit(jobs.sleep_for, 0.1)
        deadline = time.monotonic() + TIMEOUT
        while not queued.running() and time.monotonic() < deadline:  # sent to the worker (bounded)
            time.sleep(0.01)
        assert queued.running()
        assert queued.stop()
        assert running.result(timeout=TIMEOUT) == 1.0
        assert (
            pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9
        )  # the worker is past the queued one
    assert rec.kinds(queued.job_id) == ["job_cancelled"]
