"""The input of ``taskpool run``: JSON Lines or a ``--range``, read lazily and grouped into chunks.

The main thread opens the input (`open_input`); the reader thread (``taskpool-cli-reader``, one per run) runs
`Reader`: it decodes the input lazily, groups the calls into chunks of ``--chunksize``, and hands each chunk
to the main thread through ``events``. Before reading a chunk it takes a credit from ``credits`` (a semaphore
of ``window`` chunks), and the main thread gives the credit back when the chunk's lines are written: so at most
``window`` chunks are in memory, however long the input. The reader never raises: an input that cannot be
read becomes an ``"input-failed"`` event, which the main thread reports.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ._status import UsageError
from ._worker import Call, error_record

if TYPE_CHECKING:
    import queue
    from collections.abc import Iterator

    from ._resume import IndexSet

__all__ = ["Chunk", "InputError", "Item", "Reader", "json_lines", "open_input", "range_items"]

#: One input, wrapped in a 1-tuple (so that ``None`` can end the reader's ``next``): its call, or the error
#: record of an input that could not be decoded.
Item = tuple[Call | dict[str, Any]]


class InputError(Exception):
    """An input line that is not JSON; it becomes that input's error record."""


@dataclass(slots=True)
class Chunk:
    """Consecutive inputs that go to one job, and, once it finished, their output lines."""

    indices: list[int]
    # per input: the call, or the error record of an input that could not be decoded
    calls: list[Call | dict[str, Any]]
    lines: list[str] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    done: bool = False


def _as_call(value: Any) -> Call:
    if isinstance(value, list):
        return tuple(value), {}
    if isinstance(value, dict):
        return (), value
    return (value,), {}


def json_lines(stream: IO[bytes]) -> Iterator[Item]:
    """Decode JSON Lines lazily: one call per non-blank line, or the error record of a line that is not JSON."""
    for lineno, raw in enumerate(stream, 1):
        if not raw.strip():
            continue  # blank lines (a trailing one is common) are no input
        try:
            value = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            error = InputError(f"line {lineno} of the input is not JSON: {exc}")
            yield (error_record(error, None),)
        else:
            yield (_as_call(value),)


def range_items(start: int, stop: int) -> Iterator[Item]:
    """One call ``f(n)`` per integer ``start <= n < stop``."""
    for n in range(start, stop):
        yield (((n,), {}),)


def open_input(path: str | None) -> IO[bytes]:
    """The input file, or stdin for ``None`` and ``-`` (main thread; the caller closes a file it opened).

    Raises:
        UsageError: the file cannot be opened.
    """
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by run_command when the run ends
    except OSError as exc:
        raise UsageError(f"cannot read the input {path}: {exc.strerror}") from None


class Reader:
    """Reads the input on its own thread and hands chunks to the main thread (see the module docstring)."""

    def __init__(
        self,
        items: Iterator[Item],
        skip: IndexSet,
        chunksize: int,
        window: int,
        events: queue.SimpleQueue[tuple[str, Any]],
    ) -> None:
        self._items = items
        self._skip = skip
        self._chunksize = chunksize
        self._events = events
        self.credits = threading.Semaphore(window)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskpool-cli-reader", daemon=True)

    def start(self) -> None:
        """Start the reader thread (main thread)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop (main thread); it does at its next chunk. Never blocks."""
        self._stopping.set()
        self.credits.release()  # in case it waits for a credit

    def _run(self) -> None:
        try:
            index = 0
            while not self._stopping.is_set():
                self.credits.acquire()
                if self._stopping.is_set():
                    return
                chunk = Chunk([], [])
                exhausted = False
                while len(chunk.indices) < self._chunksize:
                    item = next(self._items, None)
                    if item is None:
                        exhausted = True
                        break
                    if index not in self._skip:  # already in OUTPUT (--resume)
                        chunk.indices.append(index)
                        chunk.calls.append(item[0])
                    index += 1
                if chunk.indices:
                    self._events.put(("chunk", chunk))
                else:
                    self.credits.release()
                if exhausted:
                    self._events.put(("end", None))
                    return
        except BaseException as exc:  # an unreadable input: the main thread reports it and stops
            self._events.put(("input-failed", exc))
