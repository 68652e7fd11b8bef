"""The Dask backend's callbacks: what Dask says about a pool's tasks, turned into reports.

`Reporter.on_started` runs in the client's event-loop thread, for each STARTED event a worker sends through
the scheduler; `Reporter.on_done` runs in Dask's callback thread when a task's future finishes: it fetches the
`Envelope` and reports the job's log records, output and outcome, in that order. Both take the attempt out of
the `Attempts` table before they report its outcome, so an attempt that timed out or was stopped meanwhile is
reported once. No lock is held while they call the sink or into Dask.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import pickle
from typing import TYPE_CHECKING, Any

from ..._core.reports import ReportKind
from ..._errors import DaskConnectionError, InitializerError, TaskpoolError, WorkerCrashedError
from ..._runtime.attempt import decode_error, decode_value
from .protocol import Status, read_started

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._core.job import Job
    from ..._core.reports import Report, Sink
    from .attempts import Attempt, Attempts
    from .cluster import Connection
    from .protocol import Envelope

__all__ = ["MAX_REQUEUES", "RESULT_TIMEOUT", "Reporter"]

# How long fetching a finished job's result from its worker may take. It only runs out when the worker holding
# the result is gone and Dask cannot recompute it in time; the job then fails as crashed.
RESULT_TIMEOUT = 60.0

# How often a job is sent again, silently, because the worker it waited on died before the job began there
# (a cluster started here only). Bounded because a job that kills its worker at once may die before its
# worker could say that it began.
MAX_REQUEUES = 2


class Reporter:
    """Reports what becomes of a backend's attempts to the pool's sink.

    Args:
        attempts: the backend's live attempts.
        connection: the backend's connection to Dask.
        resend: sends an attempt again, ``resend(job, payload, requeues)``.
    """

    def __init__(
        self,
        attempts: Attempts,
        connection: Connection,
        resend: Callable[[Job, tuple[bytes, bytes], int], None],
    ) -> None:
        self._attempts = attempts
        self._connection = connection
        self._resend = resend
        self.sink: Sink | None = None
        #: Whether to report STARTED (someone listens for ``job_started``); set from any thread.
        self.want_started = False
        self._broken_reported = False

    def emit(self, reports: list[Report]) -> None:
        sink = self.sink
        if sink is not None and reports:
            sink(reports)

    def broken(self, error: InitializerError) -> list[Report]:
        """The BROKEN report for ``error``, the first time the backend finds it broken; then none."""
        if self._broken_reported:
            return []
        self._broken_reported = True
        return [(ReportKind.BROKEN, None, None, None, None, error)]

    def on_started(self, event: Any) -> None:
        """A worker began a task (the client's event-loop thread): report STARTED, arm the deadline."""
        started = read_started(event)
        if started is None:
            return
        key, worker, pid = started
        attempt = self._attempts.begin(key, worker, pid, self.want_started)
        if attempt is not None:
            self.emit([(ReportKind.STARTED, attempt.job, worker, pid, None, None)])

    def on_done(self, key: str, future: Any) -> None:
        """A Dask future finished (Dask's callback thread): fetch the envelope and report the outcome."""
        if not self._attempts.is_live(key):
            return  # already reported (timeout, stop, shutdown): nothing to fetch
        status = future.status
        envelope: Envelope | None = None
        error: BaseException | None = None
        if status != "cancelled":
            try:
                # Also waits when the worker that held the result died meanwhile and Dask recomputes it.
                envelope = future.result(timeout=RESULT_TIMEOUT)
            except BaseException as exc:
                error = exc
        attempt = self._attempts.settle(key)
        if attempt is None:
            return
        job = attempt.job
        reports: list[Report] = []
        if envelope is not None:
            reports = self._unpack(attempt, envelope)
        elif status == "cancelled" or (error is not None and _is_cancelled(error)):
            connection = self._connection
            if not connection.connected:
                reason = "went away while the job was running"
            else:
                reason = "cancelled the job's task"
            error = DaskConnectionError(connection.address, reason, job.name)
            reports.append((ReportKind.FAILED, job, attempt.worker, attempt.pid, None, error))
        elif self._requeue(attempt, error):
            return
        else:
            error = self._translate(attempt, error)
            reports.append((ReportKind.FAILED, job, attempt.worker, attempt.pid, None, error))
        if (
            self.want_started
            and not attempt.started
            and reports
            and reports[-1][0] == ReportKind.SUCCEEDED
        ):
            # The STARTED event may still be on its way (or was never sent): report it before the outcome.
            reports.insert(0, (ReportKind.STARTED, job, reports[-1][2], reports[-1][3], None, None))
        self.emit(reports)

    def _unpack(self, attempt: Attempt, envelope: Envelope) -> list[Report]:
        """The reports of a task that returned: its log records, its output, then its outcome."""
        worker, pid = envelope.worker, envelope.pid
        attempt.worker, attempt.pid = worker, pid
        job = attempt.job
        reports: list[Report] = []
        for blob in envelope.records:
            with contextlib.suppress(
                Exception
            ):  # a record that does not unpickle is dropped, not the job
                reports.append((ReportKind.LOG, None, worker, pid, pickle.loads(blob), None))
        reports.extend(
            (ReportKind.OUTPUT, None, worker, pid, piece, None) for piece in envelope.output
        )
        if envelope.status == Status.OK:
            ok, value = decode_value(envelope.data, job.name)
            if ok:
                reports.append((ReportKind.SUCCEEDED, job, worker, pid, value, None))
            else:
                reports.append((ReportKind.FAILED, job, worker, pid, None, value))
        elif envelope.status == Status.ERROR:
            raised = decode_error(envelope.data, envelope.traceback, job.name)
            reports.append((ReportKind.FAILED, job, worker, pid, None, raised))
        else:
            error = InitializerError(str(envelope.data))
            reports.extend(self.broken(error))
            reports.append((ReportKind.FAILED, job, worker, pid, None, error))
        return reports

    def _requeue(self, attempt: Attempt, error: BaseException | None) -> bool:
        """Send an attempt again if its worker died before the attempt began there (Dask's callback thread)."""
        if (
            not self._connection.local
            or type(error).__name__ != "KilledWorker"
            or attempt.requeues >= MAX_REQUEUES
        ):
            return False
        last = getattr(getattr(error, "last_worker", None), "address", None)
        if attempt.worker is not None and attempt.worker == last:
            return False  # it was running there: this job is the one that crashed
        if not self._attempts.closed:
            self._resend(attempt.job, attempt.payload, attempt.requeues + 1)
        return True

    def _translate(self, attempt: Attempt, error: BaseException | None) -> BaseException:
        """The error for a Dask-level failure of a task (not an exception the job raised)."""
        job = attempt.job
        if error is None:
            return DaskConnectionError(self._connection.address, "lost the job's task", job.name)
        if type(error).__name__ == "KilledWorker":
            last = getattr(error, "last_worker", None)
            pid = getattr(last, "pid", None) or attempt.pid
            where = getattr(last, "address", None) or attempt.worker or "unknown"
            return WorkerCrashedError(
                pid, None, job.name, f"Dask lost its worker {where} while it ran the job ({error})"
            )
        if isinstance(error, (OSError, TimeoutError)) and not isinstance(error, TaskpoolError):
            return WorkerCrashedError(
                attempt.pid,
                None,
                job.name,
                f"the result could not be fetched from Dask worker {attempt.worker}: {type(error).__name__}: {error}",
            )
        return error


def _is_cancelled(error: BaseException) -> bool:
    return isinstance(error, (concurrent.futures.CancelledError, asyncio.CancelledError))
