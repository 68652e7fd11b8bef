"""`Inbound`: what the scheduler does with what a worker sends — outcomes, starts, logs, and what it prints.

The scheduler's half that reads a worker's results pipe and turns each frame into reports for the event
thread (the hot path of every job's outcome), and reads its stdout and stderr pipes (see `capture`). Runs in
the scheduler thread only.

Printed lines come before the outcomes they follow, and an unfinished last line comes with the first outcome
of a frame. The worker writes a job's output before its outcome, so once frames are read from the results
pipe, whatever their jobs printed is in the stdout and stderr pipes already: it is read (one ``poll`` for
both, then a read of those that hold something) before the frames are handled. The selector's own report
that those pipes are readable cannot stand in for it: frames written after that report are read too. A line is
reported with the `Job` the worker was given first among those it still holds (the one it runs, or whose
outcome is on its way); with None when it holds none, as for what a process a job started writes after that
job ended.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ..._core.reports import Report, ReportKind
from ..._core.timers import TimerHeap
from ..._errors import InitializerError
from ..._runtime.attempt import decode_error, decode_value
from ..._runtime.serialize import loads
from .backups import Backups
from .batching import Batchings, kind_of
from .handle import Worker
from .lifecycle import Workers
from .protocol import (
    OP_INIT_FAILED,
    OP_LOG,
    OP_OVER_MEMORY,
    OP_READY,
    OP_RELEASE,
    OP_RESULT,
    OP_SKIPPED,
    OP_STARTED,
    InitFailedMessage,
    LogMessage,
    OverMemoryMessage,
    ReleaseMessage,
    ResultMessage,
    SkippedMessage,
    StartedMessage,
)
from .startup import StartupFailures, memory_floor_error

if TYPE_CHECKING:
    from ..._core.job import Job

__all__ = ["Inbound"]

log = logging.getLogger("taskpool")

# Bound once: used per job on the hot path, where an attribute lookup on the enum class shows.
SUCCEEDED, FAILED, OUTPUT = ReportKind.SUCCEEDED, ReportKind.FAILED, ReportKind.OUTPUT
BACKUP_STARTED = ReportKind.BACKUP_STARTED


class Inbound:
    """Reading frames from workers and turning their messages into reports (mixed into `Scheduler`)."""

    want_started: bool
    _workers: Workers
    _deadlines: TimerHeap[tuple[int, int, int]]
    _startup: StartupFailures
    _initializer_name: str | None
    _batching: Batchings
    _backups: Backups

    def _break(self, error: BaseException, reports: list[Report], detail: str = "") -> None:
        raise NotImplementedError  # `Scheduler._break`: the pool cannot run jobs

    def _read(self, w: Worker, reports: list[Report]) -> None:
        try:
            frames = w.reader.read()
        except EOFError:
            self._workers.stop_watching(w)
            return
        except OSError as exc:
            # A frame named shared memory that could not be had: its outcomes are lost, so the worker is
            # ended and settled as a crash (the jobs it held run again; none is left waiting forever).
            log.error(
                "taskpool: worker %s sent a frame that cannot be read (%s); ending it", w.pid, exc
            )
            self._workers.stop_watching(w)
            w.kill()
            return
        if frames and w.capture is not None:
            self._read_output(w, reports)  # what it printed before it wrote these frames
        for frame in frames:
            self._handle(w, frame, reports)

    def _read_output(self, w: Worker, reports: list[Report], final: bool = False) -> None:
        """Report the whole lines ``w``'s stdout and stderr pipes hold; with ``final`` (it has ended), the
        unfinished last lines too."""
        pieces = self._workers.read_output(w)
        if final and w.capture is not None:
            pieces.extend(w.capture.rest())
        if pieces:
            job = next(iter(w.inflight.values()), None)
            wid, pid = w.wid, w.pid
            reports.extend((OUTPUT, job, wid, pid, piece, None) for piece in pieces)

    def _handle(self, w: Worker, frame: list[Any], reports: list[Report]) -> None:
        """Turn one frame of ``w``'s messages into reports (the hot path of every job's outcome)."""
        inflight, wid, pid = w.inflight, w.wid, w.pid
        # Durations go to the policy of their kind of job, a run of one kind at a time (a frame holds one, mostly).
        durations: list[float] = []
        kind: tuple[int, int] | None = None
        # An unfinished line the worker printed goes out with the first outcome (its job has ended).
        capture = w.capture
        unfinished = capture if capture is not None and capture.has_rest() else None
        for msg in frame:
            op = msg[0]
            if op == OP_RESULT:
                if unfinished is not None:
                    job = inflight.get(msg[1])
                    reports.extend((OUTPUT, job, wid, pid, p, None) for p in unfinished.rest())
                    unfinished = None
                job = _report_outcome(w, msg, reports)
                if job is not None:
                    job_kind = kind_of(job)
                    if job_kind != kind:
                        if kind is not None:
                            self._batching.observe(kind, durations)
                            durations = []
                        kind = job_kind
                    durations.append(msg[5])
                    if job.options.backup_after is not None:
                        self._backups.finished(job, msg[5])
            elif op == OP_STARTED:
                started: StartedMessage = msg
                job = inflight.get(started[1])
                if job is None:
                    continue
                if job.id not in w.discard:
                    self._started(w, job, reports)
                elif self._backups.lost:
                    # A job stopped (or a backup copy that lost) while it was queued here runs all the same,
                    # but it is over for the pool: no start to report, no clock; a lost copy is recalled.
                    self._backups.lost_started(w, job.id)
            elif op == OP_SKIPPED:
                _report_skipped(w, msg, reports)
            elif op == OP_READY:
                w.ready = True
                self._startup.ready()
                reports.append((ReportKind.WORKER_UP, None, wid, pid, None, None))
            elif op == OP_INIT_FAILED:
                failed: InitFailedMessage = msg
                error = InitializerError(
                    failed[1].strip().split("\n", 1)[0], self._initializer_name
                )
                self._break(error, reports, failed[1])
            elif op == OP_RELEASE:
                release: ReleaseMessage = msg
                segments = self._workers.segments
                if segments is not None:
                    segments.release(release[1])
            elif op == OP_OVER_MEMORY:
                over: OverMemoryMessage = msg
                if not w.ready:  # past the limit before its first job: so would every worker be
                    limit = self._workers.memory_limit or 0
                    self._break(memory_floor_error(over[1], limit), reports)
                self._workers.over_memory(w, over[1])
            else:
                _forward(w, msg, reports)
        if kind is not None:
            self._batching.observe(kind, durations)

    def _started(self, w: Worker, job: Job, reports: list[Report]) -> None:
        """``job`` started on ``w``: start its clocks (timeout, backup) and report the start."""
        options = job.options
        if options.timed:
            if options.timeout is not None:
                due = time.monotonic() + options.timeout
                self._deadlines.push(due, (w.wid, job.id, job.attempt))
            if options.backup_after is not None:
                copy = self._backups.started(w, job)
                if copy is not None:
                    # A backup copy: not a new attempt, so not a job_started.
                    if copy:
                        reports.append((BACKUP_STARTED, job, w.wid, w.pid, None, None))
                    return
        if self.want_started:
            reports.append((ReportKind.STARTED, job, w.wid, w.pid, None, None))


def _report_outcome(w: Worker, msg: ResultMessage, reports: list[Report]) -> Job | None:
    """Report a job's outcome from its result message (scheduler thread; once per job, so kept lean).

    Returns the job, or None when its outcome was dropped (the job was stopped while queued here).
    """
    _, job_id, ok, payload, tb, _duration = msg
    job = w.inflight.pop(job_id, None)
    if w.big:
        w.done(job_id)
    discard = w.discard
    if job is None or job_id in discard:
        discard.discard(job_id)
        return None
    if ok:
        ok, value = decode_value(payload, job.name)
        if ok:
            reports.append((SUCCEEDED, job, w.wid, w.pid, value, None))
        else:
            reports.append((FAILED, job, w.wid, w.pid, None, value))
        return job
    reports.append((FAILED, job, w.wid, w.pid, None, decode_error(payload, tb, job.name)))
    return job


def _report_skipped(w: Worker, msg: SkippedMessage, reports: list[Report]) -> None:
    """A job withdrawn before it began: reported SKIPPED, so that its future is cancelled."""
    job_id = msg[1]
    job = w.inflight.pop(job_id, None)
    if w.big:
        w.done(job_id)
    if job is None or job_id in w.discard:
        w.discard.discard(job_id)
        return
    reports.append((ReportKind.SKIPPED, job, w.wid, w.pid, None, None))


def _forward(w: Worker, msg: Any, reports: list[Report]) -> None:
    """Report what a worker logged, for the parent to emit."""
    if msg[0] == OP_LOG:
        record: LogMessage = msg
        with contextlib.suppress(Exception):  # a record that does not unpickle here is lost alone
            reports.append((ReportKind.LOG, None, w.wid, w.pid, loads(record[2]), None))
