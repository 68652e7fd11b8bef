"""`Backups`: backup copies of jobs that run long (``backup_after``), as the process backend's scheduler runs them.

Runs in the scheduler thread only, like everything that touches worker state (see `scheduler`).

The life of a backup, for one attempt of a job with ``backup_after``:

1. *Armed.* The job's start report (it is sent flagged FLAG_SYNC) puts ``start + delay`` on a timer heap. With
   a `Median`, the delay is known once enough jobs of the same function have finished; until then the start
   waits in ``_unarmed`` and is armed when the median is.
2. *Due.* If the attempt still runs on the same worker then, a `Race` is opened and its copy waits in
   ``waiting``, which `dispatch` serves before the pending queue: the copy goes to the first worker with room
   that does not hold the job already.
3. *Decided.* `settle` reads each round's reports before they go to the event thread. The first success (or
   stop, or skip) of either copy ends the race: it is reported, and the other copy is stopped: its outcome is
   dropped, and if it runs now it is recalled (`Worker.recall`: the job is interrupted and the worker goes on
   with its next job); if it still runs `RECALL_GRACE` seconds later, its worker is killed and replaced. A copy
   still queued in a worker is recalled as soon as it starts. A failure (the job's exception, a crash, a
   timeout of that copy) is dropped while another copy is still held by a worker, since that copy may still
   win; the failure of the last copy is the attempt's one outcome. A copy that waits for a worker when the
   other ends is dropped with the race.

A backup is not a new attempt: the attempt number stays, the copy's start is reported ``BACKUP_STARTED`` (not
``STARTED``), and the retry policy sees one outcome per attempt. A timeout applies to each copy from its own
start. With one worker no backup is made: there is no other worker to run it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._core.backup import Durations, Median
from ..._core.reports import Report, ReportKind
from ..._core.timers import TimerHeap
from .batching import kind_of
from .handle import KillReason

if TYPE_CHECKING:
    from ..._core.job import Job
    from .batching import Batchings
    from .handle import Worker
    from .lifecycle import Workers

__all__ = ["RECALL_GRACE", "Backups", "Race"]

# How long a recalled copy may take to stop before its worker is killed. Longer: a job in C code that returns
# to the interpreter late keeps its worker; shorter: such a worker is freed sooner, at the cost of a new one.
RECALL_GRACE = 0.25
# `_unarmed` is pruned of attempts that are over once it holds this many entries per worker (normally it holds
# about one per worker; attempts that crash or time out never report a duration that would prune it).
_UNARMED_PRUNE = 4
# What an item of the timer heap is due for: a backup copy, or the end of a recall's grace.
_BACKUP, _RECALL = 0, 1
# The reports that end an attempt on a worker.
_OUTCOMES = frozenset(
    (ReportKind.SUCCEEDED, ReportKind.FAILED, ReportKind.STOPPED, ReportKind.SKIPPED)
)


class Race:
    """One attempt of a job that runs as two copies (scheduler thread only)."""

    __slots__ = ("announced", "holders", "job")

    def __init__(self, job: Job, origin: int) -> None:
        self.job = job
        #: The workers that hold a copy whose outcome has not come (sent, running, or queued there).
        self.holders = {origin}
        #: Whether the copy's start was reported.
        self.announced = False


class Backups:
    """The backup copies of one backend's jobs; see the module docstring (scheduler thread only).

    Args:
        size: the backend's number of workers; with one, no backup is ever made.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        #: ``(what, worker id, job id, attempt)``: an armed attempt, due when it should get its copy
        #: (``_BACKUP``), or a recalled copy, due when its grace ends (``_RECALL``).
        self.due: TimerHeap[tuple[int, int, int, int]] = TimerHeap()
        #: Attempts of `Median` jobs whose median is not known yet: ``(worker id, job, attempt, start)``.
        self._unarmed: list[tuple[int, Job, int, float]] = []
        #: Durations of finished jobs by (function key, job kind), for `Median`.
        self._durations: dict[tuple[int, int], Durations] = {}
        #: The open races by job id.
        self.races: dict[int, Race] = {}
        #: Races whose copy waits for a worker, oldest first.
        self.waiting: deque[Race] = deque()
        #: ``(worker id, job id)`` of copies that lost while queued in a worker: recalled when they start.
        self.lost: set[tuple[int, int]] = set()

    def wait_time(self, now: float) -> float | None:
        return self.due.wait_time(now)

    # -- arming ---------------------------------------------------------------------------------------------
    def started(self, w: Worker, job: Job) -> bool | None:
        """``job`` started on ``w``: arm its backup, or, for a backup copy, say whether to report its start.

        Returns None for the attempt's first copy (report ``STARTED`` as usual); for a backup copy, True the
        first time (report ``BACKUP_STARTED``), False after (a copy requeued and started again: report nothing).
        """
        race = self.races.get(job.id)
        if race is not None:
            # A race opens only once its first copy has started: any start after is of a copy (wherever it
            # runs: one requeued after its worker died may even land on the first copy's worker, freed by now).
            announce = not race.announced
            race.announced = True
            return announce
        if self._size < 2:
            return None
        now = time.monotonic()
        rule = job.options.backup_after
        if isinstance(rule, Median):
            delay = self._durations_of(job).delay(rule)
            if delay is None:
                if len(self._unarmed) > _UNARMED_PRUNE * self._size:
                    self._arm_waiting()  # drops the entries of attempts that are over
                self._unarmed.append((w.wid, job, job.attempt, now))
                return None
        elif rule is None:
            return None
        else:
            delay = rule
        self.due.push(now + delay, (_BACKUP, w.wid, job.id, job.attempt))
        return None

    def finished(self, job: Job, duration: float) -> None:
        """A copy of ``job`` ended after ``duration`` seconds (its result came): count it for `Median`."""
        if not isinstance(job.options.backup_after, Median):
            return
        self._durations_of(job).add(duration)
        if self._unarmed:
            self._arm_waiting()

    def _durations_of(self, job: Job) -> Durations:
        key = (job.payload[0][0], int(job.kind))
        durations = self._durations.get(key)
        if durations is None:
            durations = self._durations[key] = Durations()
        return durations

    def _arm_waiting(self) -> None:
        """Arm the attempts that waited for their function's median, where it is known now."""
        still: list[tuple[int, Job, int, float]] = []
        for entry in self._unarmed:
            wid, job, attempt, start = entry
            if job.attempt != attempt or job.future.done():
                continue  # that attempt is over
            rule = job.options.backup_after
            assert isinstance(rule, Median)
            delay = self._durations_of(job).delay(rule)
            if delay is None:
                still.append(entry)
            else:
                self.due.push(start + delay, (_BACKUP, wid, job.id, attempt))
        self._unarmed = still

    # -- running copies -------------------------------------------------------------------------------------
    def expire(self, now: float, workers: Workers, running: bool) -> None:
        """Open a race for each armed attempt now due that still runs where it started (while ``running``:
        a backend that drains or stops starts no copies); kill the workers of recalled copies that still run."""
        for what, wid, job_id, attempt in self.due.pop_due(now):
            w = workers.by_id.get(wid)
            if w is None or w.kill_reason is not None:
                continue
            if what == _RECALL:
                if job_id in w.discard and w.slot.value == job_id:
                    # Killed as `stop()` kills; the worker's other jobs never started and run elsewhere.
                    w.kill_reason = KillReason(job_id, None)
                    w.exit_reason = (
                        f"killed: job {job_id} lost its backup race and did not stop when recalled"
                    )
                    w.kill()
                continue
            if not running or job_id in w.discard:
                continue
            job = w.inflight.get(job_id)
            if job is None or job.attempt != attempt or job_id in self.races or job.future.done():
                continue
            race = Race(job, wid)
            self.races[job_id] = race
            self.waiting.append(race)

    def dispatch(
        self,
        open_workers: list[Worker],
        batching: Batchings,
        send: Callable[[Worker, list[Any]], None],
        flags: int,
        max_tasks: int | None,
        shared_fd: Callable[[int], int | None] | None = None,
    ) -> None:
        """Send each waiting copy to the first of ``open_workers`` with room that does not hold its job.

        ``shared_fd``: the descriptors of the pool's shared objects by token, for a copy that names some.
        """
        for race in list(self.waiting):
            policy = batching.of(kind_of(race.job))
            for w in open_workers:
                if (
                    w.wid in race.holders
                    or policy.room(len(w.inflight), w.assigned, max_tasks) <= 0
                ):
                    continue
                messages = w.take_copy(race.job, flags, max_tasks, shared_fd)
                if messages is None:
                    continue
                send(w, messages)
                race.holders.add(w.wid)
                self.waiting.remove(race)
                break

    def worker_gone(self, wid: int, jobs: list[Job], running: bool) -> list[Job]:
        """Of the jobs a dead worker ``wid`` held and never started, those to put back in the pending queue.

        A backup copy among them goes back to wait for another worker instead (while the backend runs).
        """
        if self.lost:
            self.lost = {entry for entry in self.lost if entry[0] != wid}
        races = self.races
        if not races:
            return jobs
        again: list[Job] = []
        for job in jobs:
            race = races.get(job.id)
            if race is None or wid not in race.holders:
                again.append(job)
                continue
            race.holders.discard(wid)
            if running:
                self.waiting.appendleft(race)
        return again

    # -- deciding -------------------------------------------------------------------------------------------
    def settle(self, reports: list[Report], workers: Workers) -> list[Report]:
        """The reports to pass on: one outcome per raced attempt (see the module docstring)."""
        races = self.races
        kept: list[Report] = []
        ended: set[int] = set()
        for report in reports:
            kind, job = report[0], report[1]
            if job is None or kind not in _OUTCOMES:
                kept.append(report)
                continue
            race = races.get(job.id)
            if race is None:
                # A copy that lost in this same round still reported: the race has its outcome.
                if job.id not in ended:
                    kept.append(report)
                continue
            race.holders.discard(report[2])
            if kind == ReportKind.FAILED and race.holders:
                continue  # another copy runs and may still win
            del races[job.id]
            ended.add(job.id)
            self._stop_copies(race, workers)
            kept.append(report)
        return kept

    def _stop_copies(self, race: Race, workers: Workers) -> None:
        """Stop the copies of a decided race: drop their outcomes, kill the workers that run them now."""
        if race in self.waiting:
            self.waiting.remove(race)
        job = race.job
        for wid in race.holders:
            w = workers.by_id.get(wid)
            if w is None or w.inflight.get(job.id) is not job:
                continue
            w.discard.add(job.id)
            if w.slot.value == job.id:
                self._recall(w, job.id)
            else:
                self.lost.add((wid, job.id))
        race.holders.clear()

    def lost_started(self, w: Worker, job_id: int) -> None:
        """Job ``job_id``, dropped while queued in ``w``, started there: recall it if it is a lost copy."""
        entry = (w.wid, job_id)
        if entry in self.lost:
            self.lost.discard(entry)
            self._recall(w, job_id)

    def _recall(self, w: Worker, job_id: int) -> None:
        if w.kill_reason is None:
            w.recall(job_id)
            self.due.push(time.monotonic() + RECALL_GRACE, (_RECALL, w.wid, job_id, 0))

    def drop_waiting(self) -> None:
        """Copies that wait for a worker will not get one (the backend drains): forget them."""
        self.waiting.clear()

    def clear(self) -> None:
        """Forget every backup (the backend is broken or killing its workers)."""
        self.due.clear()
        self._unarmed.clear()
        self.races.clear()
        self.waiting.clear()
        self.lost.clear()
