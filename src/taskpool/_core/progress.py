"""Progress bars (tqdm) drawn in the parent, advanced by job completions on the pool's event thread.

A bar counts input items, not jobs, so a chunked `map` advances by each chunk's size. By default a bar is
drawn only when its output (stderr) is a terminal (tqdm's ``disable=None``), so logs of batch jobs stay clean;
pass ``progress={"disable": False}`` to draw it anyway. ``progress=`` takes True, a description string, or a
mapping of tqdm keyword arguments (``{"desc": "fetch", "file": f, "disable": False}``).

Threads: a bar made by `track` is advanced by done-callbacks on the event thread and closed by the caller's
thread. A future's done-callbacks run just *after* its waiters wake, so the caller could close the bar before
the last callback has counted; `TrackedBar` therefore counts under a lock and, when closed, adds what the
callbacks have not counted yet, so the final line always shows every finished item. Every bar made here is
registered with `taskpool._core.screen`, so that what jobs print or log never lands on its line.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm import tqdm

from .screen import new_bar, register

if TYPE_CHECKING:
    from .future import JobFuture

__all__ = ["TrackedBar", "as_completed", "make_bar", "track"]

F = TypeVar("F", bound="cf.Future[Any]")

Progress = bool | str | Mapping[str, Any]


def make_bar(progress: Progress, total: int | None, unit: str = "item") -> tqdm[Any]:
    """Make a bar from a ``progress=`` argument (caller's thread).

    Raises:
        TypeError: ``progress`` is not a bool, a string or a mapping.
    """
    if not isinstance(progress, (bool, str, Mapping)):
        raise TypeError(
            f"progress must be True, a description string, or a dict of tqdm arguments, not {progress!r}"
        )
    kwargs: dict[str, Any] = {"total": total, "disable": None, "unit": unit, "dynamic_ncols": True}
    if isinstance(progress, str):
        kwargs["desc"] = progress
    elif isinstance(progress, Mapping):
        kwargs.update(progress)
    # Made and registered with writers past the bars held back: the bar is drawn as it is made, and a line
    # forwarded from a worker in between would land on it. Registered, forwarded prints and log records
    # write past it (see `taskpool._core.screen`).
    with new_bar():
        bar = tqdm(**kwargs)
        register(bar)
    return bar


class TrackedBar:
    """A bar advanced by futures as they finish; see the module docstring for why it counts under a lock.

    Only futures not yet counted are held, so an endless `imap` keeps it small.
    """

    def __init__(self, bar: tqdm[Any]) -> None:
        self._bar = bar
        self._lock = threading.Lock()
        self._pending: set[cf.Future[Any]] = set()
        self._closed = False

    def add(self, future: JobFuture[Any]) -> None:
        """Count ``future``'s items when it finishes (caller's thread)."""
        with self._lock:
            self._pending.add(future)
        # Outside the lock: a future already done runs the callback here, at once.
        future.add_done_callback(self._done)

    def _done(self, future: cf.Future[Any]) -> None:
        """A done-callback (event thread, or the caller's thread for a future already done)."""
        with self._lock:
            if self._closed or future not in self._pending:
                return
            self._pending.discard(future)
            if not future.cancelled():
                self._bar.update(getattr(future, "_items", 1))

    def advance(self, items: int) -> None:
        """Count ``items`` done without a future (a checkpoint's recorded results; caller's thread)."""
        with self._lock:
            if not self._closed:
                self._bar.update(items)

    def close(self) -> None:
        """Count the finished futures the callbacks have not reached yet, and close (caller's thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            finished = sum(
                getattr(f, "_items", 1) for f in self._pending if f.done() and not f.cancelled()
            )
            self._pending.clear()
            if finished:
                self._bar.update(finished)
        self._bar.close()

    @property
    def n(self) -> float:
        """The items counted so far."""
        return self._bar.n


def track(futures: Iterable[JobFuture[Any]], progress: Progress, total: int | None) -> TrackedBar:
    """A bar that advances as each future finishes, by the number of items its job covers (caller's thread).

    More futures can be given to it later with `TrackedBar.add`.
    """
    bar = TrackedBar(make_bar(progress, total))
    for future in futures:
        bar.add(future)
    return bar


def as_completed(
    futures: Iterable[F], timeout: float | None = None, progress: Progress = False
) -> Generator[F, None, None]:
    """Yield the futures as they finish (done, failed or cancelled), like `concurrent.futures.as_completed`.

    Runs in the caller's thread. With ``progress``, a bar counts the finished futures; it is drawn only when
    stderr is a terminal unless ``progress`` is a mapping with ``"disable": False``, and it is closed when the
    iteration ends, even if the loop is left early.

    Args:
        futures: the futures to wait for (any `concurrent.futures.Future`, `JobFuture` included); duplicates
            are yielded once.
        timeout: seconds from the start of the iteration until every future must have finished (None:
            no limit).
        progress: True, a description string, or a mapping of tqdm keyword arguments.

    Raises:
        TimeoutError: ``timeout`` passed before every future finished (`concurrent.futures.TimeoutError`).
    """
    unique = list(dict.fromkeys(futures))
    if not progress:
        yield from cf.as_completed(unique, timeout)  # type: ignore[misc]  # it yields the futures it was given
        return
    bar = make_bar(progress, len(unique), unit="job")
    try:
        for future in cf.as_completed(unique, timeout):
            bar.update(1)
            yield future  # type: ignore[misc]  # one of ours: as_completed yields the futures it was given
    finally:
        bar.close()
