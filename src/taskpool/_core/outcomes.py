"""`Outcomes`: reports become retries, callbacks, events and completed futures.

This is the only code that runs user callbacks (``apply_async`` callbacks, event handlers, done-callbacks) and
the only code that completes futures, and it runs only on the pool's event thread. It also writes what jobs
print and emits the log records they make, past any live progress bar (`taskpool._core.screen`). For one job the order is
always: ``job_submitted``, ``job_started``, then the terminal event, the ``apply_async`` callback, and last the
future (so a callback has returned before ``result()`` does).

A retry is decided here, in the parent, from the attempt's outcome, so it covers crashes and timeouts too. User
code that raises anything, `BaseException` included, is logged with the job's id and the pool goes on.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import TaskpoolError
from .._runtime.attempt import ITEM_INDEX
from .events import Event, EventKind, Handlers
from .future import force_cancel
from .ledger import Ledger, PoolState
from .reports import Report, ReportKind, WorkerExit
from .screen import past_bars

if TYPE_CHECKING:
    from .job import Job

__all__ = ["Outcomes"]

log = logging.getLogger("taskpool")

# Bound once: compared per report on the hot path.
_SUCCEEDED, _FAILED, _STARTED = ReportKind.SUCCEEDED, ReportKind.FAILED, ReportKind.STARTED


class Outcomes:
    """Turns a pool's reports into outcomes (event thread only; see the module docstring).

    Args:
        ledger: the pool's jobs and state.
        handlers: the pool's event handlers.
        resubmit: sends a job's next attempt to the backend (raises `TaskpoolError` if it cannot).
        call_later: runs a function on the event thread after a delay.
    """

    def __init__(
        self,
        ledger: Ledger,
        handlers: Handlers,
        resubmit: Callable[[Job], None],
        call_later: Callable[[float, Callable[[], object]], None],
    ) -> None:
        self._ledger = ledger
        self._handlers = handlers
        self._resubmit_to_backend = resubmit
        self._call_later = call_later
        # Set by `halt` (any thread): the pool was terminated; what is still queued is dropped.
        self._halted = False

    def process(self, reports: list[Report]) -> None:
        """Handle one batch of reports, in order."""
        by_kind = self._handlers.by_kind
        for kind, job, worker, pid, value, error in reports:
            if self._halted:
                return
            if kind == _SUCCEEDED:
                assert job is not None
                if worker is not None and "job_started" in by_kind:
                    self._started_late(job, worker, pid)
                self._succeeded(job, worker, pid, value)
            elif kind == _FAILED:
                assert job is not None
                assert error is not None
                if worker is not None and "job_started" in by_kind:
                    self._started_late(job, worker, pid)
                self._failed(job, error, worker, pid)
            elif kind == _STARTED:
                assert job is not None
                job.future.attempts = job.attempt
                if "job_started" in by_kind:
                    self._emit("job_started", job, worker=worker, pid=pid)
            elif kind == ReportKind.STOPPED or kind == ReportKind.SKIPPED:
                assert job is not None
                self._cancelled(job, worker, pid, value if isinstance(value, str) else None)
            elif kind == ReportKind.BACKUP_STARTED:
                assert job is not None
                if "job_backup_started" in by_kind:
                    self._emit("job_backup_started", job, worker=worker, pid=pid)
            elif kind == ReportKind.LOG:
                self._log(value)
            elif kind == ReportKind.OUTPUT:
                self._print(value)
            elif kind == ReportKind.WORKER_UP:
                if "worker_started" in by_kind:
                    self._handlers.emit(
                        Event("worker_started", time.time(), worker=worker, pid=pid)
                    )
            elif kind == ReportKind.WORKER_DOWN:
                if "worker_exited" in by_kind:
                    exitcode, reason = value if isinstance(value, WorkerExit) else (value, None)
                    event = Event(
                        "worker_exited",
                        time.time(),
                        worker=worker,
                        pid=pid,
                        exitcode=exitcode if isinstance(exitcode, int) else None,
                        reason=reason,
                    )
                    self._handlers.emit(event)
            elif kind == ReportKind.BROKEN:
                assert error is not None
                self._break(error)

    def _started_late(self, job: Job, worker: int | str, pid: int | None) -> None:
        """Emit ``job_started`` before a terminal event whose start report never came.

        A worker that died had no time to send it (its outcome came from the ring it left, or its death is
        the outcome), yet the job ran there: keep the promise that job_started comes first.
        """
        if job.future.attempts < job.attempt:
            job.future.attempts = job.attempt
            self._emit("job_started", job, worker=worker, pid=pid)

    # -- requests of the pool's own (called through the event thread's queue) ----------------------------
    def submitted(self, job: Job) -> None:
        """Emit ``job_submitted`` for ``job``: queued like a report, so it comes before the job's others."""
        if not self._halted:
            self._emit("job_submitted", job)

    def halt(self) -> None:
        """The pool is terminated (any thread): drop every queued report and request from now on.

        Handlers and callbacks see nothing more: after a backlog of thousands of outcomes, delivering them
        (or a ``job_cancelled`` for each) would hold `terminate` and Ctrl-C back for as long as the handlers
        take. `cancel_all` then cancels every future still pending, at once.
        """
        self._halted = True

    def cancel_all(self) -> None:
        """Cancel every outstanding job's future, without events (terminate; runs ahead of the backlog)."""
        ledger = self._ledger
        for job in list(ledger.outstanding.values()):
            force_cancel(job.future)
            ledger.finish(job)

    # -- outcomes -----------------------------------------------------------------------------------------
    def _succeeded(
        self, job: Job, worker: int | str | None, pid: int | None, value: object
    ) -> None:
        future = job.future
        future.attempts = job.attempt
        if "job_succeeded" in self._handlers.by_kind:
            self._emit("job_succeeded", job, worker=worker, pid=pid, result=value)
        if job.callback is not None:
            self._run_callback(job.callback, value, job)
        if not future.done():
            future.set_result(value)
        self._ledger.finish(job)

    def _failed(
        self, job: Job, error: BaseException, worker: int | str | None, pid: int | None
    ) -> None:
        future = job.future
        policy = job.options.retry
        ledger = self._ledger
        if policy is not None and ledger.state is not PoolState.TERMINATED and not future.done():
            delay = self._retry_delay(job, error)
            if delay is not None and ledger.broken is None:
                if "job_retrying" in self._handlers.by_kind:
                    self._emit(
                        "job_retrying", job, worker=worker, pid=pid, exception=error, delay=delay
                    )
                job.attempt += 1
                if delay > 0:
                    self._call_later(delay, lambda: self._resubmit(job))
                else:
                    self._resubmit(job)
                return
        future.attempts = job.attempt
        if job.first is not None:
            error = _locate(error, job.first, job.size)
        if "job_failed" in self._handlers.by_kind:
            self._emit("job_failed", job, worker=worker, pid=pid, exception=error)
        if job.error_callback is not None:
            self._run_callback(job.error_callback, error, job)
        if not future.done():
            future.set_exception(error)
        ledger.finish(job)

    def _retry_delay(self, job: Job, error: BaseException) -> float | None:
        """The retry policy's decision; a policy that raises ends the job with what it raised."""
        assert job.options.retry is not None
        try:
            return job.options.retry.decide(job.attempt, error, job.started)
        except BaseException:
            log.exception("the retry policy of job %s (%r) raised; the job fails", job.id, job.name)
            return None

    def _cancelled(
        self, job: Job, worker: int | str | None, pid: int | None, stack: str | None = None
    ) -> None:
        force_cancel(job.future)
        if "job_cancelled" in self._handlers.by_kind:
            self._emit("job_cancelled", job, worker=worker, pid=pid, stack=stack)
        self._ledger.finish(job)

    def _resubmit(self, job: Job) -> None:
        if self._ledger.state is PoolState.TERMINATED or job.future.done():
            self._ledger.finish(job)
            return
        try:
            self._resubmit_to_backend(job)
        except TaskpoolError as exc:
            self._failed(job, exc, None, None)

    def _break(self, error: BaseException) -> None:
        self._ledger.break_(error)
        for job in list(self._ledger.outstanding.values()):
            self._failed(job, error, None, None)

    # -- user code ------------------------------------------------------------------------------------------
    def _emit(
        self,
        kind: EventKind,
        job: Job,
        *,
        worker: int | str | None = None,
        pid: int | None = None,
        result: Any = None,
        exception: BaseException | None = None,
        delay: float | None = None,
        stack: str | None = None,
    ) -> None:
        event = Event(
            kind,
            time.time(),
            job.id,
            job.name,
            job.attempt,
            worker,
            pid,
            result,
            exception,
            None,
            delay,
            None,
            stack,
        )
        self._handlers.emit(event)

    def _run_callback(self, callback: Callable[[Any], object], arg: object, job: Job) -> None:
        try:
            callback(arg)
        except (
            BaseException
        ):  # anything, SystemExit included: other jobs' futures depend on this thread
            log.exception("the callback of job %s (%r) raised; the pool goes on", job.id, job.name)

    def _log(self, record: object) -> None:
        if isinstance(record, logging.LogRecord):
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                with past_bars():  # a handler writing to the terminal must not cut a progress bar
                    logger.handle(record)

    def _print(self, output: object) -> None:
        if not isinstance(output, tuple):
            return
        stream_name, text = output
        stream = sys.stdout if stream_name == "stdout" else sys.stderr
        if stream is None:
            return
        try:
            with past_bars():  # whole lines, never on a progress bar's line
                stream.write(text)
                stream.flush()
        except (OSError, ValueError):
            # The parent's stream is closed (``| head``) or broken: the lines are lost, the outcomes are not.
            pass


def _locate(error: BaseException, first: int, size: int) -> BaseException:
    """Say which input of a map-family call failed: on ``error``'s attributes and in its text.

    A job's own exception keeps its type and args; it gains ``taskpool_position`` and, from Python 3.11, a
    note. taskpool's own errors (a crash, a timeout, a part that does not pickle) cover the whole chunk: they get
    ``positions`` and the positions in their message, on a copy, since one such error may fail many jobs (the
    error that broke the pool fails every job, and later submissions raise it too). Returns the error to
    report.
    """
    index = error.__dict__.pop(ITEM_INDEX, None)
    if isinstance(error, TaskpoolError) or not isinstance(index, int):
        if isinstance(error, TaskpoolError):
            error = _copy_error(error)
        positions = range(first, first + size)
        where = f"input item {first}" if size == 1 else f"input items {first}..{first + size - 1}"
        with contextlib.suppress(Exception):
            error.positions = positions  # type: ignore[attr-defined]
        text = f"the job held the map's {where}"
        if isinstance(error, TaskpoolError) and error.args and isinstance(error.args[0], str):
            error.args = (f"{error.args[0]} [{text}]", *error.args[1:])
            return error
    else:
        position = first + index
        with contextlib.suppress(Exception):
            error.taskpool_position = position  # type: ignore[attr-defined]
        text = f"raised by the map's input item {position}"
    add_note = getattr(error, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"taskpool: {text}")
    return error


def _copy_error(error: TaskpoolError) -> TaskpoolError:
    """A copy of one of taskpool's errors (they all pickle, so they all copy), with its cause kept."""
    try:
        twin = copy.copy(error)
    except Exception:
        return error
    twin.__cause__ = error.__cause__
    twin.__suppress_context__ = error.__suppress_context__
    return twin
