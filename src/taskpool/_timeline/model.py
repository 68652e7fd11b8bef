"""The timeline of a run: which worker ran which attempt when, and how each ended, built from pool events.

`build` is a pure function over recorded marks (one per event, see `taskpool._timeline.record`), so it runs
wherever it is called: on the caller's thread for `TaskPool.timeline`, in tests with hand-made events. It
starts no thread and touches no pool.

How events become bars:

- ``job_started`` opens an attempt on its worker; ``job_succeeded``, ``job_failed``, ``job_retrying`` and
  ``job_cancelled`` close it. A failure's kind comes from its exception: `WorkerCrashedError` is a crash,
  `JobTimeoutError` a timeout, anything else a failure. ``job_retrying`` marks the attempt as retried.
- An attempt still open when its worker exits lost its outcome with the worker (it runs again): it ends there,
  as a crash. One still open at the end of the record is running.
- ``job_backup_started`` opens a backup copy of the running attempt on its worker (``backup_after``). The
  attempt's end closes both copies: the one on the worker the outcome came from has it, and if that is a
  success the other was stopped. A copy whose worker exits is a crash of that copy alone: the other runs on.
- ``worker_started`` and ``worker_exited`` bound each worker's life. A worker seen only through its jobs lived
  from the start of the record. Workers are packed into lanes (rows): a worker that replaces one that exited
  takes its lane, so a pool that replaced workers after crashes or ``max_tasks_per_worker`` still draws as
  many rows as it ran workers at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Mark", "Outcome", "TimelineAttempt", "TimelineWorker", "build"]

Outcome = Literal["succeeded", "failed", "crashed", "timed out", "cancelled", "running"]

#: One recorded event: ``(kind, time, job_id, name, attempt, worker, pid, outcome, detail)``. ``outcome`` is
#: how a job's attempt ended (for ``job_failed`` and ``job_retrying``: failed, crashed or timed out; None for
#: other kinds); ``detail`` the error's text for an attempt, the exit code for ``worker_exited``. A plain
#: tuple, as the pool's reports are: one is made per event while a pool records.
Mark: TypeAlias = tuple[
    str,
    float,
    "int | None",
    "str | None",
    "int | None",
    "int | str | None",
    "int | None",
    "str | None",
    object,
]

#: The lane of the attempts that ran on no worker (a job that failed before it was sent).
NO_WORKER = -1


@dataclass(frozen=True)
class TimelineAttempt:
    """One attempt of a job on a timeline.

    Attributes:
        job_id: the job's id.
        name: the job's name.
        attempt: the attempt number, from 1.
        worker: the worker's id within the pool (a Dask worker's address), or None if it ran on none.
        pid: the worker's process id, where known.
        lane: the row it is drawn in (`NO_WORKER`, -1, for an attempt that ran on no worker).
        start: seconds from the start of the timeline.
        end: seconds from the start of the timeline.
        outcome: ``"succeeded"``, ``"failed"``, ``"crashed"``, ``"timed out"``, ``"cancelled"`` (stopped
            while it ran) or ``"running"`` (not finished when the timeline was taken).
        retried: the attempt failed and the job ran again.
        error: the exception's type and message, for an attempt that did not succeed.
        backup: a backup copy of the attempt (``backup_after``), which ran beside it on another worker.
    """

    job_id: int
    name: str
    attempt: int
    worker: int | str | None
    pid: int | None
    lane: int
    start: float
    end: float
    outcome: Outcome
    retried: bool = False
    error: str | None = None
    backup: bool = False

    @property
    def duration(self) -> float:
        """Seconds the attempt ran."""
        return self.end - self.start


@dataclass(frozen=True)
class TimelineWorker:
    """One worker's life on a timeline.

    Attributes:
        worker: the worker's id within the pool (a Dask worker's address).
        pid: its process id, where known.
        lane: the row it is drawn in.
        start: seconds from the start of the timeline (0 if it was not seen starting).
        end: seconds from the start of the timeline (the timeline's end if it had not exited).
        exited: whether it was seen exiting.
        exitcode: its exit code, where known (negative: the signal that killed it).
        busy: seconds it spent running attempts.
    """

    worker: int | str
    pid: int | None
    lane: int
    start: float
    end: float
    exited: bool
    exitcode: int | None
    busy: float

    @property
    def utilisation(self) -> float:
        """The share of its life it spent running attempts, from 0 to 1."""
        life = self.end - self.start
        return min(1.0, self.busy / life) if life > 0 else 0.0


class _Life:
    """A worker's life while `build` reads the marks."""

    __slots__ = ("end", "exitcode", "exited", "pid", "start", "worker")

    def __init__(self, worker: int | str, pid: int | None, start: float) -> None:
        self.worker = worker
        self.pid = pid
        self.start = start
        self.end: float | None = None
        self.exited = False
        self.exitcode: int | None = None


class _Open:
    """An attempt that started and has not ended yet."""

    __slots__ = ("attempt", "backup", "life", "name", "start")

    def __init__(
        self, name: str, attempt: int, life: _Life | None, start: float, backup: bool = False
    ) -> None:
        self.name = name
        self.attempt = attempt
        self.life = life
        self.start = start
        self.backup = backup


_ENDS = {"job_succeeded", "job_failed", "job_retrying", "job_cancelled"}


def build(
    marks: Iterable[Mark], origin: float, now: float, *, halted: bool = False
) -> tuple[list[TimelineAttempt], list[TimelineWorker], float]:
    """The attempts and worker lives that ``marks`` tell of, in seconds from ``origin``.

    Args:
        marks: recorded events, in the order they happened.
        origin: the `time.time()` that is second 0 (when recording began).
        now: the `time.time()` the timeline is taken: where attempts still running end.
        halted: the pool was terminated at ``now``: attempts still open were stopped there, not running.

    Returns:
        The attempts (by start time), the workers (by start time), each with its lane, and the timeline's
        length in seconds: up to ``now`` while an attempt runs, else up to the last event.
    """
    lives: list[_Life] = []
    alive: dict[int | str, _Life] = {}
    running: dict[int, _Open] = {}
    copies: dict[int, _Open] = {}  # the backup copies running beside an attempt in ``running``
    closed: list[tuple[_Open, int, float, Outcome, bool, str | None]] = []

    def life_of(worker: int | str | None, pid: int | None) -> _Life | None:
        if worker is None:
            return None
        life = alive.get(worker)
        if life is None:  # its start was not seen: it was there before the record began
            life = alive[worker] = _Life(worker, pid, origin)
            lives.append(life)
        elif life.pid is None:
            life.pid = pid
        return life

    def close(
        job_id: int,
        at: float,
        outcome: Outcome,
        retried: bool,
        error: str | None,
        worker: int | str | None = None,
    ) -> None:
        attempt = running.pop(job_id)
        copy = copies.pop(job_id, None)
        if copy is None:
            closed.append((attempt, job_id, at, outcome, retried, error))
            return
        # Two copies ran: the one on ``worker`` has the outcome; after a success the other was stopped.
        won, other = (copy, attempt) if _on(copy, worker) else (attempt, copy)
        closed.append((won, job_id, at, outcome, retried, error))
        if outcome == "succeeded":
            closed.append(
                (other, job_id, at, "cancelled", False, "stopped: the other copy finished first")
            )
        else:
            closed.append((other, job_id, at, outcome, retried, error))

    last = origin
    for kind, at, job_id, name, number, worker, pid, outcome, detail in marks:
        last = max(last, at)
        if kind == "worker_started":
            assert worker is not None
            if worker not in alive:
                alive[worker] = _Life(worker, pid, at)
                lives.append(alive[worker])
        elif kind == "worker_exited":
            ended = alive.pop(worker, None) if worker is not None else None
            if ended is None:
                continue
            ended.end, ended.exited = at, True
            ended.exitcode = detail if isinstance(detail, int) else None
            why = f"its worker exited (code {ended.exitcode}) before it sent the outcome"
            for j in [j for j, o in copies.items() if o.life is ended]:
                closed.append(
                    (copies.pop(j), j, at, "crashed", False, why)
                )  # the other copy runs on
            for j in [j for j, o in running.items() if o.life is ended]:
                if j in copies:  # the backup copy runs on, as the attempt
                    closed.append((running[j], j, at, "crashed", False, why))
                    running[j] = copies.pop(j)
                else:
                    close(j, at, "crashed", True, why + "; it runs again")
        elif job_id is None:
            continue
        elif kind == "job_started":
            if (
                job_id in running
            ):  # it runs again although its last run never ended: that run was lost
                close(job_id, at, "crashed", True, "its outcome was lost; it ran again")
            running[job_id] = _Open(name or "", number or 1, life_of(worker, pid), at)
        elif kind == "job_backup_started":
            if job_id in running and job_id not in copies:
                copies[job_id] = _Open(name or "", number or 1, life_of(worker, pid), at, True)
        elif kind in _ENDS:
            if job_id not in running:
                if kind == "job_cancelled":
                    continue  # cancelled before it ran: nothing to draw
                # Ended with no start seen: it ran on no worker, or started before the record began.
                running[job_id] = _Open(name or "", number or 1, life_of(worker, pid), at)
            if kind == "job_succeeded":
                close(job_id, at, "succeeded", False, None, worker)
            elif kind == "job_cancelled":
                close(job_id, at, "cancelled", False, None, worker)
            else:
                error = detail if isinstance(detail, str) else None
                how: Outcome = "crashed" if outcome == "crashed" else "failed"
                if outcome == "timed out":
                    how = "timed out"
                close(job_id, at, how, kind == "job_retrying", error, worker)
    until = max(now, last) if halted else now if running else last
    for job_id in list(running):
        close(job_id, until, "cancelled" if halted else "running", False, None)
    lanes = _lanes(lives)
    busy: dict[int, float] = {}
    attempts: list[TimelineAttempt] = []
    for attempt, job_id, at, outcome, retried, error in closed:
        on = attempt.life
        start, end = attempt.start - origin, max(at, attempt.start) - origin
        if on is not None:
            busy[id(on)] = busy.get(id(on), 0.0) + (end - start)
        attempts.append(
            TimelineAttempt(
                job_id=job_id,
                name=attempt.name,
                attempt=attempt.attempt,
                worker=None if on is None else on.worker,
                pid=None if on is None else on.pid,
                lane=NO_WORKER if on is None else lanes[id(on)],
                start=start,
                end=end,
                outcome=outcome,
                retried=retried,
                error=error,
                backup=attempt.backup,
            )
        )
    attempts.sort(key=lambda a: (a.start, a.job_id))
    workers = [
        TimelineWorker(
            worker=life.worker,
            pid=life.pid,
            lane=lanes[id(life)],
            start=life.start - origin,
            end=(until if life.end is None else life.end) - origin,
            exited=life.exited,
            exitcode=life.exitcode,
            busy=busy.get(id(life), 0.0),
        )
        for life in lives
    ]
    return attempts, workers, until - origin


def _on(copy: _Open, worker: int | str | None) -> bool:
    """Whether ``copy`` ran on ``worker`` (the worker an outcome came from)."""
    return worker is not None and copy.life is not None and copy.life.worker == worker


def _lanes(lives: Sequence[_Life]) -> dict[int, int]:
    """Each life's lane (by ``id``): the lowest lane whose last worker had exited when it started.

    Lanes are then numbered by their first worker's id where ids are numbers (worker 1 on top, whichever
    came up first), by start otherwise.
    """
    free_at: list[float] = []  # per lane: when its last worker ended (inf: still alive)
    first: list[_Life] = []  # per lane: its first worker
    lane_of: dict[int, int] = {}
    for life in sorted(lives, key=lambda x: x.start):
        end = float("inf") if life.end is None else life.end
        for lane, free in enumerate(free_at):
            if free <= life.start:
                free_at[lane] = end
                break
        else:
            lane = len(free_at)
            free_at.append(end)
            first.append(life)
        lane_of[id(life)] = lane
    if all(isinstance(life.worker, int) for life in first):
        order = sorted(range(len(first)), key=lambda lane: first[lane].worker)
        renumber = {old: new for new, old in enumerate(order)}
        lane_of = {key: renumber[lane] for key, lane in lane_of.items()}
    return lane_of
