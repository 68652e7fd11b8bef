"""The inline backend: each job runs at once, in the thread that submits it.

For debugging (a breakpoint in a job just works, tracebacks are local) and for deterministic tests. Futures,
callbacks and events still go through the pool's event thread, so the semantics match the other backends;
only concurrency is gone. It enforces no timeouts and cannot stop a job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.job import run_here
from .._errors import InitializerError
from . import BROKEN, FAILED, SKIPPED, STARTED, SUCCEEDED, WORKER_UP, Sink

if TYPE_CHECKING:
    from .._core.job import Job

__all__ = ["InlineBackend"]


class InlineBackend:
    """Runs every job in the submitting thread, one at a time."""

    name = "inline"
    workers = 1
    supports_timeout = False
    supports_stop = False

    def __init__(
        self, *, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self._initializer = initializer
        self._initargs = initargs
        self._sink: Sink = lambda reports: None
        self._want_started = False

    def start(self, sink: Sink) -> None:
        self._sink = sink
        sink([(WORKER_UP, None, 1, None, None)])
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except Exception as exc:
                error = InitializerError(f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
                sink([(BROKEN, None, error, None, None)])

    def submit(self, job: Job) -> None:
        sink = self._sink
        if job.attempt == 1 and not job.future.set_running_or_notify_cancel():
            sink([(SKIPPED, job, None, None, None)])
            return
        if self._want_started:
            sink([(STARTED, job, 1, None, None)])
        try:
            value = run_here(job)
        except BaseException as exc:
            sink([(FAILED, job, exc, 1, None)])
        else:
            sink([(SUCCEEDED, job, value, 1, None)])

    def stop(self, job: Job) -> bool:
        return False

    def want_started(self, enabled: bool) -> None:
        self._want_started = enabled

    def shutdown(self, wait: bool) -> None:
        return None
