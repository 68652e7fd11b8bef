"""The input of ``taskpool run``: JSON Lines or a ``--range``, read lazily and grouped into chunks.

The main thread opens the input (`open_input`); the reader thread (``taskpool-cli-reader``, one per run) runs
`Reader`: it decodes the input lazily, groups the calls into chunks of ``--chunksize``, and hands each chunk
to the main thread through ``events``. Before reading a chunk it waits on the `Budget`: at most ``chunks``
chunks, and about ``nbytes`` bytes of input, are read and not yet written (the main thread gives a chunk's
share back when its lines are written). So memory stays bounded however long the input and however long its
lines: one chunk always gets through, so a single line larger than the budget still runs. The reader never
raises: a line that cannot be decoded becomes that line's error record, and an input that cannot be read at
all becomes an ``"input-failed"`` event, which the main thread reports.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from ._status import PROG, UsageError
from ._worker import Call, error_record

if TYPE_CHECKING:
    import queue
    from collections.abc import Iterator

    from .._core.indexset import IndexSet

__all__ = [
    "Budget",
    "Chunk",
    "InputError",
    "Item",
    "Reader",
    "json_lines",
    "open_input",
    "range_items",
]


class Item(NamedTuple):
    """One input: its call (or the error record of a line that could not be decoded), where it came from
    (its 1-based line number, or the ``--range`` value), and its size in bytes."""

    call: Call | dict[str, Any]
    where: int
    nbytes: int


class InputError(Exception):
    """An input line that cannot be decoded as JSON; it becomes that input's error record."""


@dataclass(slots=True)
class Chunk:
    """Consecutive inputs that go to one job, and, once it finished, their output lines."""

    indices: list[int]
    # per input: the call, or the error record of an input that could not be decoded
    calls: list[Call | dict[str, Any]]
    where: list[int] = field(default_factory=list)  # per input: its line number or --range value
    nbytes: int = 0
    lines: list[str] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    done: bool = False


def _as_call(value: Any) -> Call:
    if isinstance(value, list):
        return tuple(value), {}
    if isinstance(value, dict):
        return (), value
    return (value,), {}


def _no_constant(name: str) -> Any:
    # json.loads takes NaN, Infinity and -Infinity, which are not JSON (and which no record could echo back).
    raise ValueError(f"{name} is not a JSON value")


def decode_line(raw: bytes, lineno: int) -> Call | dict[str, Any]:
    """The call of one input line, or the error record of a line that cannot be decoded (never raises
    for a bad line: a line nested too deeply, not UTF-8, or not JSON fails alone)."""
    try:
        return _as_call(json.loads(raw, parse_constant=_no_constant))
    except RecursionError:
        error = InputError(f"line {lineno} of the input is nested too deeply to decode")
    except (
        Exception
    ) as exc:  # JSONDecodeError, UnicodeDecodeError, MemoryError: the line, not the run
        error = InputError(f"line {lineno} of the input is not JSON: {exc}")
    return error_record(error, None)


def json_lines(stream: IO[bytes]) -> Iterator[Item]:
    """Decode JSON Lines lazily: one item per non-blank line (blank lines count as lines, not inputs)."""
    for lineno, raw in enumerate(stream, 1):
        if not raw.strip():
            continue  # blank lines (a trailing one is common) are no input
        yield Item(decode_line(raw, lineno), lineno, len(raw))


def range_items(start: int, stop: int) -> Iterator[Item]:
    """One call ``f(n)`` per integer ``start <= n < stop``."""
    for n in range(start, stop):
        yield Item(((n,), {}), n, 0)


def open_input(path: str | None) -> IO[bytes]:
    """The input file, or stdin for ``None`` and ``-`` (main thread; the caller closes a file it opened).

    Reading a terminal, it says on stderr that it waits for lines until end of file.

    Raises:
        UsageError: the file cannot be opened, or stdin is closed.
    """
    if path is None or path == "-":
        stdin = sys.stdin
        if stdin is None:
            raise UsageError("stdin is closed: give an INPUT file, or --range START STOP")
        if _is_terminal(stdin) and sys.stderr is not None:
            print(
                f"{PROG} run: reading JSON lines from stdin until end of file (Ctrl-D); "
                "give an INPUT file or --range START STOP to read elsewhere",
                file=sys.stderr,
                flush=True,
            )
        return stdin.buffer
    try:
        return open(path, "rb")  # closed by run_command when the run ends
    except OSError as exc:
        raise UsageError(f"cannot read the input {path}: {exc.strerror}") from None


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):  # closed, or a stand-in that cannot tell
        return False


class Budget:
    """How much the reader may read ahead of the writer: chunks and bytes read and not yet written.

    The reader thread calls `take` before each chunk and `add_bytes` once it is read; the main thread calls
    `give_back` when a chunk's lines are written, and `stop` to end the run. A chunk is let through when no
    more than ``chunks - 1`` are out and fewer than ``nbytes`` bytes are, so one chunk always passes.
    """

    def __init__(self, chunks: int, nbytes: int) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._chunks = chunks
        self._nbytes = nbytes
        self._out_chunks = 0
        self._out_bytes = 0
        self._stopped = False

    def take(self) -> bool:
        """Wait for room for one more chunk (reader thread); False once stopped."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._stopped
                    or (self._out_chunks < self._chunks and self._out_bytes < self._nbytes)
                )
            )
            if self._stopped:
                return False
            self._out_chunks += 1
            return True

    def add_bytes(self, nbytes: int) -> None:
        """Count the bytes of the chunk just read (reader thread)."""
        with self._cond:
            self._out_bytes += nbytes

    def give_back(self, nbytes: int) -> None:
        """A chunk of ``nbytes`` is written, or was empty (any thread)."""
        with self._cond:
            self._out_chunks -= 1
            self._out_bytes -= nbytes
            self._cond.notify()

    def stop(self) -> None:
        """Wake and end the reader (main thread)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()


class Reader:
    """Reads the input on its own thread and hands chunks to the main thread (see the module docstring)."""

    def __init__(
        self,
        items: Iterator[Item],
        skip: IndexSet,
        chunksize: int,
        budget: Budget,
        events: queue.SimpleQueue[tuple[str, Any]],
    ) -> None:
        self._items = items
        self._skip = skip
        self._chunksize = chunksize
        self._events = events
        self.budget = budget
        self._thread = threading.Thread(target=self._run, name="taskpool-cli-reader", daemon=True)

    def start(self) -> None:
        """Start the reader thread (main thread)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop (main thread); it does at its next chunk. Never blocks."""
        self.budget.stop()

    def _run(self) -> None:
        try:
            index = 0
            while self.budget.take():
                chunk = Chunk([], [])
                exhausted = False
                while len(chunk.indices) < self._chunksize:
                    item = next(self._items, None)
                    if item is None:
                        exhausted = True
                        break
                    if index not in self._skip:  # already in OUTPUT (--resume)
                        chunk.indices.append(index)
                        chunk.calls.append(item.call)
                        chunk.where.append(item.where)
                        chunk.nbytes += item.nbytes
                    index += 1
                if chunk.indices:
                    self.budget.add_bytes(chunk.nbytes)
                    self._events.put(("chunk", chunk))
                else:
                    self.budget.give_back(0)
                if exhausted:
                    self._events.put(("end", None))
                    return
        except BaseException as exc:  # an unreadable input: the main thread reports it and stops
            self._events.put(("input-failed", exc))
