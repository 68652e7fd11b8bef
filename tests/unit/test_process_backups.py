"""The races of backup copies (`taskpool._backends.process.backups`) on hand-made workers: no process starts.

What is checked: one outcome per raced attempt, whichever copy ends first and however; the losing copy is
discarded and recalled (or recalled when it starts, if it was queued); a copy whose worker died goes back to
wait for another worker.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests import jobs

from taskpool._backends.process.backups import Backups
from taskpool._core.future import JobFuture
from taskpool._core.job import Job, JobOptions
from taskpool._core.reports import Report, ReportKind

SUCCEEDED, FAILED, STOPPED = ReportKind.SUCCEEDED, ReportKind.FAILED, ReportKind.STOPPED
_ids = itertools.count(1)


class FakeSlot:
    def __init__(self) -> None:
        self.value = 0


class FakeWorker:
    """What `Backups` reads and changes of a `Worker`."""

    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.inflight: dict[int, Job] = {}
        self.discard: set[int] = set()
        self.slot = FakeSlot()
        self.kill_reason: Any = None
        self.recalled: list[int] = []
        self.killed = False

    def recall(self, job_id: int) -> None:
        self.recalled.append(job_id)

    def kill(self) -> None:
        self.killed = True


class FakeWorkers:
    def __init__(self, *workers: FakeWorker) -> None:
        self.by_id = {w.wid: w for w in workers}


def make_job() -> Job:
    job_id = next(_ids)
    future: JobFuture[Any] = JobFuture(job_id, "square")
    job = Job(job_id, jobs.square, (1,), {}, JobOptions(backup_after=0.1), future)
    job.payload = ((7, b""), b"", 0, None)
    return job


def race_of(backups: Backups, job: Job, first: FakeWorker, copy: FakeWorker) -> None:
    """Open a race for ``job`` running on ``first``, with its copy held by ``copy``."""
    first.inflight[job.id] = job
    first.slot.value = job.id
    backups.started(first, job)  # type: ignore[arg-type]
    workers = FakeWorkers(first, copy)
    backups.expire(float("inf"), workers, running=True)  # type: ignore[arg-type]
    assert job.id in backups.races
    (race,) = backups.waiting
    backups.waiting.clear()
    race.holders.add(copy.wid)
    copy.inflight[job.id] = job


def report(kind: ReportKind, job: Job, w: FakeWorker, error: BaseException | None = None) -> Report:
    return (kind, job, w.wid, None, None, error)


def test_the_first_success_wins_and_the_running_loser_is_recalled() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)
    b.slot.value = job.id  # the copy runs too
    assert backups.started(b, job) is True  # type: ignore[arg-type]
    assert backups.started(b, job) is False  # type: ignore[arg-type]  # announced once
    won = report(SUCCEEDED, job, b)
    assert backups.settle([won], FakeWorkers(a, b)) == [won]  # type: ignore[arg-type]
    assert not backups.races
    assert job.id in a.discard
    assert a.recalled == [job.id]
    assert not a.killed  # killed only if it is still running when the grace ends


def test_a_recalled_copy_that_keeps_running_has_its_worker_killed() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)
    backups.settle([report(SUCCEEDED, job, b)], FakeWorkers(a, b))  # type: ignore[arg-type]
    backups.expire(float("inf"), FakeWorkers(a, b), running=True)  # type: ignore[arg-type]
    assert a.killed
    assert a.kill_reason.job_id == job.id


def test_a_failure_is_dropped_while_the_other_copy_runs() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)
    workers = FakeWorkers(a, b)
    assert backups.settle([report(FAILED, job, b, ValueError("copy"))], workers) == []  # type: ignore[arg-type]
    last = report(FAILED, job, a, ValueError("first"))
    assert backups.settle([last], workers) == [last]  # type: ignore[arg-type]
    assert not backups.races


def test_reports_of_both_copies_in_one_round_give_one_outcome() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)
    won = report(SUCCEEDED, job, a)
    late = report(FAILED, job, b, ValueError("copy"))
    assert backups.settle([won, late], FakeWorkers(a, b)) == [won]  # type: ignore[arg-type]


def test_a_stop_ends_the_race() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)
    stopped = report(STOPPED, job, a)
    assert backups.settle([stopped], FakeWorkers(a, b)) == [stopped]  # type: ignore[arg-type]
    assert job.id in b.discard


def test_a_loser_queued_in_its_worker_is_recalled_when_it_starts() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job = make_job()
    race_of(backups, job, a, b)  # b holds the copy queued: its slot shows another job
    backups.settle([report(SUCCEEDED, job, a)], FakeWorkers(a, b))  # type: ignore[arg-type]
    assert job.id in b.discard
    assert b.recalled == []
    backups.lost_started(b, job.id)  # type: ignore[arg-type]
    assert b.recalled == [job.id]


def test_a_copy_whose_worker_died_before_it_started_waits_again() -> None:
    backups, a, b = Backups(2), FakeWorker(1), FakeWorker(2)
    job, other = make_job(), make_job()
    race_of(backups, job, a, b)
    assert backups.worker_gone(b.wid, [job, other], running=True) == [other]
    assert [race.job for race in backups.waiting] == [job]
    # Now the first copy's failure is the attempt's: no worker holds another copy.
    last = report(FAILED, job, a, ValueError("first"))
    assert backups.settle([last], FakeWorkers(a)) == [last]  # type: ignore[arg-type]
    assert not backups.waiting


def test_no_backup_with_one_worker() -> None:
    backups, a = Backups(1), FakeWorker(1)
    job = make_job()
    a.inflight[job.id] = job
    assert backups.started(a, job) is None  # type: ignore[arg-type]
    assert len(backups.due) == 0
