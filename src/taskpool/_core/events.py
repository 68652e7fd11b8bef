"""Parent-side events: the `Event` record and the handler registry.

Handlers run on the pool's event thread (see `taskpool._core.event_thread`), one at a time, in the order things
happened: for one job ``job_submitted`` < ``job_started`` (< ``job_backup_started``) < ``job_succeeded`` /
``job_failed``. Handlers are added and removed from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

__all__ = ["EVENT_KINDS", "Event", "EventKind", "Handlers"]

log = logging.getLogger("taskpool")

EventKind = Literal[
    "job_submitted",
    "job_started",
    "job_succeeded",
    "job_failed",
    "job_retrying",
    "job_cancelled",
    "job_backup_started",
    "worker_started",
    "worker_exited",
]
EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))


class Event(NamedTuple):
    """One thing that happened in a pool; what an event handler receives.

    An immutable record (a named tuple: one is made for every job on the hot path, and a tuple is five times
    cheaper to make than a frozen dataclass).

    Attributes:
        kind: which event (see `EventKind`).
        time: `time.time()` when the parent learned of it.
        job_id: the job's id (None for worker events).
        name: the job's name (None for worker events).
        attempt: the attempt number, from 1 (None for worker events).
        worker: the worker's id within the pool, where known (a Dask worker's address on the dask backend).
        pid: the worker's process id, where known.
        result: the job's result (``job_succeeded``).
        exception: the job's exception (``job_failed``, ``job_retrying``).
        exitcode: the worker's exit code (``worker_exited``).
        delay: seconds until the next attempt (``job_retrying``).
        reason: why the worker ended (``worker_exited``, process backend): ``"memory limit: 2.1 GB > 2.0
            GB"``, ``"max_tasks_per_worker: ..."``, ``"killed: job 'f' ran past its timeout of 2 s"``,
            ``"killed by the out-of-memory killer"``, ``"killed by SIGSEGV"``, ``"exited with code 3"``...
        stack: where a job stopped while it ran was (``job_cancelled``, process backend): its worker's
            thread stacks, as `JobTimeoutError.stack` holds them for a timeout.
    """

    kind: EventKind
    time: float
    job_id: int | None = None
    name: str | None = None
    attempt: int | None = None
    worker: int | str | None = None
    pid: int | None = None
    result: Any = None
    exception: BaseException | None = None
    exitcode: int | None = None
    delay: float | None = None
    reason: str | None = None
    stack: str | None = None


Handler = Callable[[Event], object]


class Handlers:
    """Event handlers by kind. Copy-on-write, so the event thread reads them without a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_kind: dict[str, tuple[Handler, ...]] = {}

    def add(self, kind: str, handler: Handler) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(
                f"unknown event kind {kind!r}; the kinds are: {', '.join(sorted(EVENT_KINDS))}"
            )
        if not callable(handler):
            raise TypeError(f"an event handler must be callable, not {handler!r}")
        with self._lock:
            by_kind = dict(self.by_kind)
            by_kind[kind] = (*by_kind.get(kind, ()), handler)
            self.by_kind = by_kind

    def remove(self, kind: str, handler: Handler) -> bool:
        with self._lock:
            handlers = list(self.by_kind.get(kind, ()))
            if handler not in handlers:
                return False
            handlers.remove(handler)
            by_kind = dict(self.by_kind)
            if handlers:
                by_kind[kind] = tuple(handlers)
            else:
                del by_kind[kind]
            self.by_kind = by_kind
            return True

    def emit(self, event: Event) -> None:
        """Run the handlers of ``event.kind`` in order (event thread). A handler that raises is logged."""
        for handler in self.by_kind.get(event.kind, ()):
            try:
                handler(event)
            except BaseException:  # anything, SystemExit included: the pool must go on
                log.exception(
                    "an event handler for %s (job %s) raised; the pool goes on",
                    event.kind,
                    event.job_id,
                )
