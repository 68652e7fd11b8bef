"""Parent-side events: the `Event` record, the handler registry, and the event thread.

Each pool has exactly one event thread. It receives the backend's reports in the order the backend saw them,
and it alone completes futures, runs ``apply_async`` callbacks, runs event handlers, and emits log records and
printed lines that workers sent. So handlers and callbacks never run concurrently with each other, and for
one job they see ``job_submitted`` < ``job_started`` < ``job_succeeded``/``job_failed``.

The thread holds only a weak reference to its pool, so a pool that nobody references can be collected (and
its finalizer can stop the workers).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, get_args

__all__ = ["EVENT_KINDS", "Event", "EventKind", "EventThread", "Handlers"]

log = logging.getLogger("taskpool")

EventKind = Literal[
    "job_submitted",
    "job_started",
    "job_succeeded",
    "job_failed",
    "job_retrying",
    "job_cancelled",
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
        worker: the worker's id within the pool, where known.
        pid: the worker's process id, where known.
        result: the job's result (``job_succeeded``).
        exception: the job's exception (``job_failed``, ``job_retrying``).
        exitcode: the worker's exit code (``worker_exited``).
        delay: seconds until the next attempt (``job_retrying``).
    """

    kind: EventKind
    time: float
    job_id: int | None = None
    name: str | None = None
    attempt: int | None = None
    worker: int | None = None
    pid: int | None = None
    result: Any = None
    exception: BaseException | None = None
    exitcode: int | None = None
    delay: float | None = None


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
            except Exception:
                log.exception(
                    "an event handler for %s (job %s) raised; the pool goes on",
                    event.kind,
                    event.job_id,
                )


class EventThread:
    """The thread that turns reports into completed futures, callbacks and events (one per pool)."""

    def __init__(self, process: Callable[[list[Any]], None], name: str = "taskpool-events") -> None:
        self._queue: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._timer_ids = itertools.count()
        self.put = self._queue.put  # the backend's sink: any thread, never blocks
        owner = getattr(process, "__self__", None)
        ref: Callable[[], Callable[[list[Any]], None] | None]
        ref = weakref.WeakMethod(process) if owner is not None else (lambda: process)
        self._thread = threading.Thread(target=self._run, args=(ref,), name=name, daemon=True)
        self._thread.start()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on this thread after ``delay`` seconds (event thread only)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_ids), fn))

    def stop(self, timeout: float | None = None) -> None:
        """Process what is queued, then end the thread (any other thread)."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self, ref: Callable[[], Callable[[list[Any]], None] | None]) -> None:
        get = self._queue.get
        timers = self._timers
        while True:
            try:
                item = get(timeout=max(0.0, timers[0][0] - time.monotonic())) if timers else get()
            except queue.Empty:
                item = []
            if item is None:
                return
            process = ref()
            if process is None:
                return
            try:
                if item:
                    process(item)
                while timers and timers[0][0] <= time.monotonic():
                    heapq.heappop(timers)[2]()
            except (
                Exception
            ):  # a bug in the pool's own handling: say so, keep serving the other jobs
                log.critical("taskpool's event thread failed to process reports", exc_info=True)
            # Hold no report while idle: it would keep the last jobs' arguments and results alive.
            del process, item
