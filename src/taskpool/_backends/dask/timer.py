"""The Dask backend's timer thread: fails attempts past their deadline, delivers reports found in `submit`.

Exactly one thread per backend, "taskpool-dask-timer". It sleeps on the `Attempts` table's condition until a
deadline passes or reports are deferred to it (a job that could not be sent fails from here rather than from
the caller's thread, so the sink is only ever called from the backend's own threads), and ends when the table
is closed. It holds no lock while it calls the sink or into Dask.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..._core.reports import ReportKind
from ..._errors import JobTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._core.reports import Sink
    from .attempts import Attempt, Attempts

__all__ = ["TimerThread"]


class TimerThread:
    """Runs the deadlines of a backend's attempts.

    Args:
        attempts: the backend's live attempts.
        emit: reports to the pool's sink.
        halt: cancels attempts that timed out, and kills the workers running them where it can.
    """

    def __init__(
        self, attempts: Attempts, emit: Sink, halt: Callable[[list[Attempt]], None]
    ) -> None:
        self._attempts = attempts
        self._emit = emit
        self._halt = halt
        self._thread = threading.Thread(target=self._loop, name="taskpool-dask-timer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end, once the attempts table is closed."""
        self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while True:
            due = self._attempts.next_due()
            if due is None:
                return
            reports, expired = due
            for attempt in expired:
                timeout = attempt.job.options.timeout or 0.0
                error = JobTimeoutError(timeout, attempt.job.name)
                reports.append(
                    (ReportKind.FAILED, attempt.job, attempt.worker, attempt.pid, None, error)
                )
            try:
                self._emit(reports)
            except Exception:
                logging.getLogger(__name__).exception("the pool's sink failed")
            if expired:
                self._halt(expired)
