"""The inline backend: each job runs at once, in the thread that submits it.

For debugging (a breakpoint in a job just works, tracebacks are local) and for deterministic tests. Futures,
callbacks and events still go through the pool's event thread, so the semantics match the other backends;
only concurrency is gone. It enforces no timeouts and cannot stop a job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.local import SameProcessSharing, run_attempt
from .._core.reports import ReportKind, Sink
from .._errors import InitializerError

if TYPE_CHECKING:
    from .._core.backlog import Backlog
    from .._core.job import Job

__all__ = ["InlineBackend"]


class InlineBackend(SameProcessSharing):
    """Runs every job in the submitting thread, one at a time."""

    name = "inline"
    workers = 1
    supports_timeout = False
    supports_stop = False
    supports_backup = True  # accepted and ignored: no other worker to run a copy
    start_method: str | None = None
    shared_state_unavailable: str | None = None

    def __init__(
        self, *, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self._initializer = initializer
        self._initargs = initargs
        self._sink: Sink = lambda reports: None
        self._want_started = False

    def start(self, sink: Sink, backlog: Backlog | None = None) -> None:
        self._sink = sink
        sink([(ReportKind.WORKER_UP, None, 1, None, None, None)])
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except Exception as exc:
                error = InitializerError(f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
                sink([(ReportKind.BROKEN, None, None, None, None, error)])

    def submit(self, job: Job) -> None:
        run_attempt(job, 1, self._sink, self._want_started)

    def stop(self, job: Job) -> bool:
        return False

    def withdraw(self, upto: int) -> None:
        """Nothing to do: a job here runs as it is submitted."""

    def want_started(self, enabled: bool) -> None:
        self._want_started = enabled

    def shutdown(self, wait: bool) -> None:
        return None
