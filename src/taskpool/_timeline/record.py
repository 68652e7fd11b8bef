"""`Recorder`: the event handlers that keep what a timeline is drawn from.

A pool made with ``timeline=True`` registers `Recorder.record` for the kinds in `KINDS` before its backend
starts, so the record holds every worker's start and every attempt. The handler runs on the pool's event
thread and appends one small tuple (a `Mark`) per event; the job's result is never kept, and its exception only
as text, so the record holds no user object alive. `Recorder.marks` is read from any thread: appending to a
list and copying it are single operations on the list, atomic in CPython (per object in the free-threaded
build too), so neither side takes a lock.

What recording costs: one ``job_started`` message per job from process workers (sent only while someone
listens for that event), two marks per attempt on the event thread, and about 320 bytes per attempt kept until
the pool is collected.
"""

from __future__ import annotations

import time
from typing import get_args

from .._core.events import Event, EventKind
from .._errors import JobTimeoutError, WorkerCrashedError
from .model import Mark, Outcome

__all__ = ["KINDS", "Recorder", "mark"]

#: The event kinds a timeline is built from: all but ``job_submitted`` (a queued job draws nothing, and
#: listening for it would cost every submit a trip through the event thread).
KINDS: tuple[EventKind, ...] = tuple(k for k in get_args(EventKind) if k != "job_submitted")

# An error's text on a timeline: enough to recognise it, not a whole traceback.
_ERROR_CHARS = 300


def describe(error: BaseException) -> str:
    """``Type: message`` of ``error``, cut to a few hundred characters."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def mark(event: Event) -> Mark:
    """The `Mark` of ``event``: its fields without the result, the exception as its kind and text."""
    error = event.exception
    outcome: Outcome | None = None
    detail: object = None
    if error is not None:
        if isinstance(error, WorkerCrashedError):
            outcome = "crashed"
        elif isinstance(error, JobTimeoutError):
            outcome = "timed out"
        else:
            outcome = "failed"
        detail = describe(error)
    elif event.kind == "worker_exited":
        detail = event.exitcode
    return (
        event.kind,
        event.time,
        event.job_id,
        event.name,
        event.attempt,
        event.worker,
        event.pid,
        outcome,
        detail,
    )


class Recorder:
    """Keeps the marks of one pool's events (see the module docstring for which thread does what)."""

    def __init__(self) -> None:
        self.origin = time.time()  # second 0 of the timeline: when the pool was made
        self.halted: float | None = None  # when the pool was terminated: no event comes after it
        self._marks: list[Mark] = []

    def halt(self) -> None:
        """The pool is terminated (the terminating thread): the record ends now."""
        if self.halted is None:
            self.halted = time.time()

    def record(self, event: Event) -> None:
        """The event handler (event thread)."""
        self._marks.append(mark(event))

    def marks(self) -> list[Mark]:
        """A copy of the marks so far (any thread)."""
        return self._marks.copy()
