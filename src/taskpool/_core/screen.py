"""Writing past live progress bars, so that a bar and other output never share a line of the terminal.

A tqdm bar is redrawn in place (a carriage return, no newline), so any other text written while it is drawn
lands on the bar's line and cuts it. `past_bars` clears every live bar, lets the caller write, then redraws the
bars below what was written, all under tqdm's own write lock, which the bars also take to redraw themselves.
`LinesPastBars` is a text stream that does that for each whole line written to it.

A bar is drawn as it is made, before it can be counted among the live ones: `new_bar` holds this module's
lock while a bar is made and registered, and `past_bars` holds it while it writes, bars or none, so a line
is never written between a bar's first drawing and its registration (where it would land on the bar).

Which threads run this: `new_bar` and `register` run in the thread that makes a bar; `past_bars` runs in
whichever thread writes (the pool's event thread for the output and log records forwarded from workers; the
main thread of ``taskpool run`` for its records). The registry is a `weakref.WeakSet`, so a forgotten bar
costs nothing. tqdm is imported only once a bar exists: importing this module imports nothing outside the
standard library.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["LinesPastBars", "new_bar", "past_bars", "register"]

_live: weakref.WeakSet[Any] = weakref.WeakSet()
# Held while a bar is made and registered, and while a line is written past the bars (see the docstring);
# taken before tqdm's lock where both are taken. Reentrant: a writer may make a bar.
_lock = threading.RLock()
# Depth of nested `past_bars` calls in this thread (a forwarded line written to a `LinesPastBars`): only the
# outermost clears and redraws.
_depth = threading.local()


def register(bar: Any) -> None:
    """Count ``bar`` (a tqdm bar) among the live bars that other output must write past."""
    _live.add(bar)


@contextlib.contextmanager
def new_bar() -> Iterator[None]:
    """Hold back every writer past the bars while the caller makes a bar and registers it (its thread)."""
    with _lock:
        yield


@contextlib.contextmanager
def past_bars() -> Iterator[None]:
    """Clear the live bars, let the caller write, then redraw them below (any thread).

    Costs an uncontended lock and one check of an empty set when no bar is drawn. The write lock is tqdm's
    (reentrant), which a bar's own redraw also takes, so a bar never redraws in the middle of what the
    caller writes.
    """
    if getattr(_depth, "inside", False):
        yield
        return
    with _lock:
        _depth.inside = True
        try:
            if not _live:
                yield
                return
            from tqdm import tqdm

            with tqdm.get_lock():  # type: ignore[no-untyped-call]
                # A closed or disabled bar has disable set; one not yet started has no start_t.
                drawn = [bar for bar in list(_live) if not bar.disable and hasattr(bar, "start_t")]
                for bar in drawn:
                    bar.clear(nolock=True)
                try:
                    yield
                finally:
                    for bar in drawn:
                        bar.refresh(nolock=True)
        finally:
            _depth.inside = False


class LinesPastBars:
    """A text stream that writes whole lines to ``stream`` past the live bars (any thread).

    Text is held until its line is complete (or until `flush`), so that a bar is never redrawn between the
    pieces of one ``print``. Writers share one pending line, as they share one terminal.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._partial = ""

    def write(self, text: str) -> int:
        """Hold ``text``; write the whole lines it completes."""
        with self._lock:
            pending = self._partial + text
            cut = pending.rfind("\n") + 1
            self._partial = pending[cut:]
        if cut:
            self._put(pending[:cut])
        return len(text)

    def flush(self) -> None:
        """Write the unfinished line too."""
        with self._lock:
            rest, self._partial = self._partial, ""
        self._put(rest)

    def _put(self, text: str) -> None:
        with past_bars():
            if text:
                self._stream.write(text)
            self._stream.flush()

    def isatty(self) -> bool:
        """Whether the underlying stream is a terminal."""
        return self._stream.isatty()

    def fileno(self) -> int:
        """The underlying stream's file descriptor."""
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        """The underlying stream's encoding."""
        return getattr(self._stream, "encoding", "utf-8")
