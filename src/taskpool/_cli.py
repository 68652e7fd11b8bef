"""The ``taskpool`` command: ``taskpool demo`` and ``taskpool run MODULE:FUNCTION``.

``taskpool run`` applies a function to every input (JSON Lines, or a ``--range`` of integers) on a `TaskPool`
and writes one JSON line per input. How its threads and processes share the work:

- a reader thread (``taskpool-cli-reader``) reads and decodes the input lazily, groups the calls into chunks
  of ``--chunksize``, and hands each chunk to the main thread through ``events``. Before reading a chunk it
  takes a credit from ``credits`` (a semaphore of ``window`` chunks), and the main thread gives the credit back
  when the chunk's lines are written: so at most ``window`` chunks are in memory, however long the input.
- the main thread submits chunks to the pool and is the only writer of the output. It writes (and flushes)
  each result line as soon as it may: at once with ``--unordered``, otherwise as soon as every earlier input
  is written. Ctrl-C (KeyboardInterrupt) reaches it: it keeps what is written, terminates the pool, exits 130.
- the pool's event thread runs the futures' done-callbacks, which only put the finished chunk on ``events``.
- worker processes run `_call_one` (one input per job) or `_call_chunk` (several), which call the user's
  function and encode its result as JSON there, so that a result JSON cannot encode fails that input alone.

No lock is held by this module; the two queues and the semaphore are the only shared objects.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from types import FrameType

    from ._core.future import JobFuture

__all__ = ["main"]

PROG = "taskpool"

# Chunks in flight (read, submitted or waiting to be written) per worker. More keeps workers busy when jobs
# are tiny (the main thread's round trip hides behind the queue); fewer keeps memory lower and makes Ctrl-C
# in ordered mode drop fewer finished-but-unwritten results.
WINDOW_PER_WORKER = 64

# The most events the main thread handles between two flushes of the output: one flush covers a burst of
# lines (fewer syscalls), yet a steady stream of events cannot hold written lines back for long.
DRAIN_BURST = 256

# How many failures the summary on stderr shows.
SHOWN_FAILURES = 5

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer in `... | head`
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class UsageError(Exception):
    """Bad arguments or unreadable input: the command stops with exit status 2 and this message."""


class _Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread by the signal handler so the run stops as on Ctrl-C."""


# -- the worker side ---------------------------------------------------------------------------------------


class ResultNotJSONError(TypeError):
    """A job's result cannot be written as JSON (raised in the worker, so that only that input fails)."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"the result (of type {type_name}) is not JSON-serializable: {reason}. Return JSON types "
            "(dict, list, str, int, float, bool, None), e.g. convert with .tolist() or str()"
        )

    def __reduce__(self) -> tuple[type[ResultNotJSONError], tuple[str, str]]:
        return (type(self), (self.type_name, self.reason))


def _encode(result: Any) -> str:
    """The JSON text of a result (runs in a worker); NaN and infinities are refused, as JSON has none."""
    try:
        return json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ResultNotJSONError(type(result).__qualname__, str(exc)) from None


def _error_record(exc: BaseException, tb: str | None) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tb}


def _call_one(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Run ``fn(*args, **kwargs)`` and return its result as JSON text (runs in a worker).

    Its exceptions propagate, so the pool's `Retry` sees them.
    """
    return _encode(fn(*args, **kwargs))


Envelope = tuple[bool, Any]  # (True, JSON text of the result) or (False, an error record)


def _call_chunk(
    fn: Callable[..., Any], calls: list[tuple[tuple[Any, ...], dict[str, Any]]], attempts: int
) -> list[Envelope]:
    """Run ``fn`` on each call of a chunk, each in isolation (runs in a worker).

    A call that raises is tried again here, up to ``attempts`` times in all, since the pool's retry would
    rerun the whole chunk; a result JSON cannot encode is not retried (it would fail the same way).
    """
    out: list[Envelope] = []
    for args, kwargs in calls:
        for attempt in range(1, attempts + 1):
            try:
                out.append((True, _encode(fn(*args, **kwargs))))
                break
            except ResultNotJSONError as exc:
                out.append((False, _error_record(exc, None)))
                break
            except Exception as exc:
                if attempt == attempts:
                    # From the user's function down: this function's own frame is no help to them.
                    tb = "".join(
                        traceback.format_exception(
                            type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None
                        )
                    )
                    out.append((False, _error_record(exc, tb)))
    return out


# -- reading the input (reader thread) ---------------------------------------------------------------------


class InputError(Exception):
    """An input line that is not JSON; it becomes that input's error record."""


@dataclass(slots=True)
class _Chunk:
    """Consecutive inputs that go to one job, and, once it finished, their output lines."""

    indices: list[int]
    # per input: the call, or the error record of an input that could not be decoded
    calls: list[tuple[tuple[Any, ...], dict[str, Any]] | dict[str, Any]]
    lines: list[str] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    done: bool = False


def _as_call(value: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(value, list):
        return tuple(value), {}
    if isinstance(value, dict):
        return (), value
    return (value,), {}


def _json_lines(
    stream: IO[bytes],
) -> Iterator[tuple[tuple[tuple[Any, ...], dict[str, Any]] | dict[str, Any]]]:
    """Decode JSON Lines lazily: one call per non-blank line, or the error record of a line that is not JSON."""
    for lineno, raw in enumerate(stream, 1):
        if not raw.strip():
            continue  # blank lines (a trailing one is common) are no input
        try:
            value = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
            error = InputError(f"line {lineno} of the input is not JSON: {exc}")
            yield (_error_record(error, None),)
        else:
            yield (_as_call(value),)


class _IndexSet:
    """A set of indices, compact when they are mostly consecutive from 0 (output of an earlier run)."""

    def __init__(self) -> None:
        self.floor = 0  # every index below it is in the set
        self.above: set[int] = set()

    def add(self, index: int) -> None:
        if index < self.floor:
            return
        self.above.add(index)
        while self.floor in self.above:
            self.above.remove(self.floor)
            self.floor += 1

    def __contains__(self, index: int) -> bool:
        return index < self.floor or index in self.above

    def __len__(self) -> int:
        return self.floor + len(self.above)


class _Reader:
    """Reads the input on its own thread and hands chunks to the main thread (see the module docstring)."""

    def __init__(
        self,
        items: Iterator[tuple[Any]],
        skip: _IndexSet,
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
                chunk = _Chunk([], [])
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


# -- resuming ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Previous:
    """What an earlier run left in OUTPUT."""

    done: _IndexSet
    ok: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    failed: int = 0
    torn: bool = False


def _read_previous(path: str) -> _Previous:
    """Read the records of an earlier run; truncate a torn last line away (main thread, before the run).

    Raises:
        UsageError: a line other than the last is not a result record: the file is not ours to append to.
    """
    previous = _Previous(_IndexSet())
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below; truncation needs the open handle
    except FileNotFoundError:
        return previous
    except OSError as exc:
        raise UsageError(f"cannot read {path} to resume: {exc.strerror}") from None
    with f:
        good_end = 0
        bad: tuple[int, bytes] | None = None
        for lineno, raw in enumerate(f, 1):
            if (
                bad is not None
            ):  # a bad line followed by more lines is damage, not a torn last write
                raise UsageError(
                    f"line {bad[0]} of {path} is not a result record ({bad[1][:60]!r}); cannot resume "
                    "into it. Write to a new file, or repair or remove that line"
                )
            record = _parse_record(raw) if raw.endswith(b"\n") else None
            if record is None:
                bad = (lineno, raw)
                continue
            index, ok, error = record
            previous.done.add(index)
            if ok:
                previous.ok += 1
            else:
                previous.failed += 1
                if len(previous.failures) < SHOWN_FAILURES:
                    previous.failures.append((index, error))
            good_end += len(raw)
        if bad is not None:
            # The previous run was killed in the middle of writing its last line: drop it; it is redone.
            f.truncate(good_end)
            previous.torn = True
    return previous


def _parse_record(raw: bytes) -> tuple[int, bool, dict[str, Any]] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    index, ok = record.get("index"), record.get("ok")
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or index < 0
        or not isinstance(ok, bool)
    ):
        return None
    error = record.get("error")
    return index, ok, error if isinstance(error, dict) else {}


# -- the run (main thread) ---------------------------------------------------------------------------------


def resolve(spec: str) -> Callable[..., Any]:
    """The function named by ``MODULE:FUNCTION`` (or ``path/to/file.py:FUNCTION``), imported in the parent.

    The current directory is put on ``sys.path`` first, as ``python -m`` does; the pool's workers get the
    same path, and the function travels to them by reference (module and name), so they import it too.

    Raises:
        UsageError: the spec is malformed, the module does not import, or the name is not a callable in it.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"expected MODULE:FUNCTION (e.g. taskpool.examples:collatz_steps), not {spec!r}"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {module_name}")
        directory, module_name = os.path.split(path[:-3])
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(
                f"no module named {exc.name!r}. Run from the directory that holds it, add that directory "
                "to PYTHONPATH, or install its package"
            ) from None
        raise UsageError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        detail = "".join(traceback.format_exception(exc))
        raise UsageError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}\n{detail}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec} is a {type(obj).__name__}, not a function")
    return obj  # type: ignore[no-any-return]


def _range_items(start: int, stop: int) -> Iterator[tuple[tuple[tuple[Any, ...], dict[str, Any]]]]:
    for n in range(start, stop):
        yield (((n,), {}),)


def _open_input(path: str | None) -> IO[bytes]:
    if path is None or path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # closed by run_command when the run ends
    except OSError as exc:
        raise UsageError(f"cannot read the input {path}: {exc.strerror}") from None


def _ok_line(index: int, result_json: str) -> str:
    return f'{{"index": {index}, "ok": true, "result": {result_json}}}\n'


def _error_line(index: int, error: dict[str, Any]) -> str:
    return json.dumps({"index": index, "ok": False, "error": error}) + "\n"


def _exception_record(exc: BaseException) -> dict[str, Any]:
    """The error record of a job's exception, with the worker's traceback when there is one (main thread)."""
    from ._errors import RemoteTraceback

    cause = exc.__cause__
    return _error_record(
        exc, _user_frames(cause.tb) if isinstance(cause, RemoteTraceback) else None
    )


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_EXAMPLES = _PACKAGE_DIR + "examples.py"  # user-facing functions: their frames stay


def _user_frames(tb: str) -> str:
    """A worker's traceback text without the frames of taskpool's own code, which only called the user's."""
    out: list[str] = []
    skipping = False
    for line in tb.splitlines(keepends=True):
        if line.startswith('  File "'):
            path = line[len('  File "') :].partition('"')[0]
            skipping = path.startswith(_PACKAGE_DIR) and path != _EXAMPLES
        elif not line.startswith(
            "    "
        ):  # the header, the exception line, or a chained traceback's text
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


@dataclass(slots=True)
class _Tally:
    ok: int = 0
    failed: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add_failure(self, index: int, error: dict[str, Any]) -> None:
        self.failed += 1
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append((index, error))


class _Run:
    """One ``taskpool run``: submits the reader's chunks and writes their lines (main thread)."""

    def __init__(
        self, args: argparse.Namespace, fn: Callable[..., Any], out: IO[str], skip: _IndexSet
    ) -> None:
        from . import Retry, TaskPool

        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        self.out = out
        self.ordered = not args.unordered
        self.chunksize: int = args.chunksize
        self.attempts: int = args.retries + 1
        self.tally = _Tally()
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # ordered mode: the chunks not yet written, in input order
        self.waiting: deque[_Chunk] = deque()
        self.in_flight = 0  # chunks handed over by the reader and not yet written
        self.reader: _Reader | None = None
        kwargs: dict[str, Any] = {"backend": args.backend}
        if args.start_method is not None:
            kwargs["start_method"] = args.start_method
        if args.address is not None:
            kwargs["address"] = args.address
        self.pool = TaskPool(args.workers, **kwargs)
        try:
            retry = None
            if args.retries:
                import tenacity

                if self.chunksize == 1:
                    # The function's own exceptions too, but not a result JSON cannot encode: it would
                    # fail the same way again.
                    retry = Retry(
                        attempts=self.attempts,
                        on_crash=True,
                        on_timeout=True,
                        retry=tenacity.retry_if_not_exception_type(ResultNotJSONError),
                    )
                else:  # _call_chunk retries each input's own exceptions itself
                    retry = Retry(attempts=self.attempts, on=(), on_crash=True, on_timeout=True)
            self.view = self.pool.options(timeout=args.timeout, retry=retry)
        except BaseException:
            self.pool.terminate()
            raise
        self.window = max(2, self.pool.workers * WINDOW_PER_WORKER)
        self.bar: Any = None
        if args.progress is not False:
            from tqdm import tqdm

            total = None
            if args.range is not None:
                total = max(0, args.range[1] - args.range[0]) - len(skip)
            self.bar = tqdm(
                total=total,
                disable=None if args.progress is None else False,
                unit="item",
                dynamic_ncols=True,
                file=sys.stderr,
            )

    def run(self, items: Iterator[tuple[Any]], skip: _IndexSet) -> None:
        """Run every input and write its line; returns when all are written (main thread).

        Raises:
            UsageError: the input could not be read; the lines written so far are kept.
        """
        self.reader = _Reader(items, skip, self.chunksize, self.window, self.events)
        self.reader.start()
        ended = False
        while not ended or self.in_flight:
            try:
                kind, payload = self.events.get(timeout=1.0)
            except queue.Empty:
                continue
            batch = [(kind, payload)]
            while (
                len(batch) < DRAIN_BURST
            ):  # take whatever else is ready: one flush covers the burst
                try:
                    batch.append(self.events.get_nowait())
                except queue.Empty:
                    break
            for kind, payload in batch:
                if kind == "chunk":
                    self.in_flight += 1
                    self._submit(payload)
                elif kind == "done":
                    self._finish(payload)
                elif kind == "end":
                    ended = True
                else:  # "input-failed"
                    self._write()
                    raise UsageError(f"reading the input failed: {payload}")
            self._write()

    def _submit(self, chunk: _Chunk) -> None:
        if self.ordered:
            self.waiting.append(chunk)
        calls = [c for c in chunk.calls if isinstance(c, tuple)]
        if not calls:  # every input of the chunk was malformed: nothing to run
            self._finish_chunk(chunk, [])
            return
        future: JobFuture[Any]
        # Named after the function and the input, so that a crash or timeout message says which one failed.
        if self.chunksize == 1:
            args, kwargs = calls[0]
            view = self.view.options(name=f"{self.name}[{chunk.indices[0]}]")
            future = view.submit(_call_one, self.fn, args, kwargs)
        else:
            view = self.view.options(name=f"{self.name}[{chunk.indices[0]}..{chunk.indices[-1]}]")
            future = view.submit(_call_chunk, self.fn, calls, self.attempts)
        events = self.events
        future.add_done_callback(lambda f: events.put(("done", (chunk, f))))

    def _finish(self, payload: tuple[_Chunk, JobFuture[Any]]) -> None:
        chunk, future = payload
        ran = sum(1 for c in chunk.calls if isinstance(c, tuple))
        if future.cancelled():
            return  # only after terminate; nothing more is written
        error = future.exception()
        if error is not None:
            envelopes: list[Envelope] = [(False, _exception_record(error))] * ran
        elif self.chunksize == 1:
            envelopes = [(True, future.result())]
        else:
            envelopes = future.result()
        self._finish_chunk(chunk, envelopes)

    def _finish_chunk(self, chunk: _Chunk, envelopes: list[Envelope]) -> None:
        results = iter(envelopes)
        for index, call in zip(chunk.indices, chunk.calls, strict=True):
            ok, payload = next(results) if isinstance(call, tuple) else (False, call)
            payload = cast("Any", payload)  # JSON text when ok, else an error record
            if ok:
                chunk.lines.append(_ok_line(index, payload))
            else:
                chunk.lines.append(_error_line(index, payload))
                chunk.failures.append((index, payload))
        chunk.done = True
        if not self.ordered:
            self._emit(chunk)

    def _write(self) -> None:
        while self.waiting and self.waiting[0].done:
            self._emit(self.waiting.popleft())
        self.out.flush()

    def _emit(self, chunk: _Chunk) -> None:
        self.out.writelines(chunk.lines)
        self.tally.ok += len(chunk.indices) - len(chunk.failures)
        for index, error in chunk.failures:
            self.tally.add_failure(index, error)
        if self.bar is not None:
            self.bar.update(len(chunk.indices))
        self.in_flight -= 1
        assert self.reader is not None  # chunks come from it
        self.reader.credits.release()

    def close(self, *, terminate: bool) -> None:
        """Stop the reader and the pool (main thread); ``terminate`` kills jobs still running."""
        if self.reader is not None:
            self.reader.stop()
        if terminate:
            self.pool.terminate()
        else:
            self.pool.close()
            self.pool.join()
        if self.bar is not None:
            self.bar.close()


def _summary(
    tally: _Tally, previous: _Previous, stderr: IO[str], *, interrupted: str | None = None
) -> None:
    failed = tally.failed + previous.failed
    if not failed and interrupted is None:
        return
    parts = [f"{tally.ok} ok", f"{tally.failed} failed"]
    if len(previous.done):
        parts.append(
            f"{len(previous.done)} kept from the earlier run ({previous.failed} of them failed)"
        )
    head = f"{PROG} run: " + ", ".join(parts)
    if interrupted is not None:
        head += f"; {interrupted}: the lines written are kept, rerun with --resume to finish"
    print(head, file=stderr)
    shown = (previous.failures + tally.failures)[:SHOWN_FAILURES]
    for index, error in shown:
        message = str(error.get("message", "")).splitlines()[0] if error.get("message") else ""
        print(f"  index {index}: {error.get('type', '?')}: {message}", file=stderr)
    if failed > len(shown):
        print(f'  ... and {failed - len(shown)} more (lines with "ok": false)', file=stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated


def run_command(args: argparse.Namespace) -> int:
    """``taskpool run``: returns the exit status (main thread).

    Raises:
        UsageError: bad arguments or unreadable input (exit status 2).
    """
    if args.input is not None and args.range is not None:
        raise UsageError("give either an INPUT file or --range START STOP, not both")
    if args.resume and args.output in (None, "-"):
        raise UsageError("--resume needs -o OUTPUT: the file whose records it continues")
    if args.backend != "process" and args.start_method is not None:
        raise UsageError(f"--start-method applies to the process backend, not to {args.backend!r}")
    fn = resolve(args.function)
    previous = _read_previous(args.output) if args.resume else _Previous(_IndexSet())
    if previous.torn:
        print(
            f"{PROG} run: dropped a torn last line of {args.output}; its input runs again",
            file=sys.stderr,
        )
    if args.range is not None:
        items: Iterator[tuple[Any]] = _range_items(*args.range)
        stream = None
    else:
        stream = _open_input(args.input)
        items = _json_lines(stream)
    out: IO[str]
    if args.output in (None, "-"):
        out = sys.stdout
    else:
        try:
            out = open(args.output, "a" if args.resume else "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write the output {args.output}: {exc.strerror}") from None
    old_sigterm = None
    if threading.current_thread() is threading.main_thread():
        old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    run: _Run | None = None
    try:
        try:
            run = _Run(args, fn, out, previous.done)
        except (ValueError, TypeError, ImportError) as exc:
            raise UsageError(str(exc)) from None
        try:
            run.run(items, previous.done)
        except BaseException:
            run.close(terminate=True)
            raise
        run.close(terminate=False)
    except (KeyboardInterrupt, _Terminated) as exc:
        _flush_quietly(out)
        if run is not None:
            what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
            _summary(run.tally, previous, sys.stderr, interrupted=what)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_TERMINATED
    except BrokenPipeError:
        # The reader of our output went away (`... | head`): stop quietly, as a killed writer would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (
        OSError
    ) as exc:  # the output cannot be written (disk full, ...): what was flushed is kept
        raise UsageError(
            f"stopped: {exc}; the lines written so far are kept (finish with --resume)"
        ) from None
    finally:
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)
        if out is not sys.stdout:
            _flush_quietly(out)
            out.close()
        if stream is not None and stream is not sys.stdin.buffer:
            stream.close()
    _summary(run.tally, previous, sys.stderr)
    return EXIT_FAILED if run.tally.failed or previous.failed else EXIT_OK


def _flush_quietly(out: IO[str]) -> None:
    with contextlib.suppress(
        OSError, ValueError
    ):  # closed, or the disk or pipe failed: nothing to save
        out.flush()


# -- demo --------------------------------------------------------------------------------------------------


def demo_command(args: argparse.Namespace, stdout: IO[str]) -> int:
    """``taskpool demo``: the same CPU-bound jobs serially, then on a pool; then a callback (main thread)."""
    from . import TaskPool
    from .examples import count_primes, prime_limit_for, whoami

    def say(text: str) -> None:
        print(text, file=stdout, flush=True)

    workers, jobs = args.workers, args.jobs
    limit = prime_limit_for(args.seconds)
    say(
        f"{jobs} jobs of count_primes({limit}) (about {args.seconds:g} s each), {os.cpu_count()} CPUs"
    )

    start = time.perf_counter()
    serial = [count_primes(limit) for _ in range(jobs)]
    serial_time = time.perf_counter() - start
    say(f"  serial, in this process:  {serial_time:6.2f} s")

    start = time.perf_counter()
    with TaskPool(workers) as pool:
        # Start every worker before timing, by keeping them all busy at once: starting processes is a cost
        # paid once per pool, not per job, and it is shown apart.
        pids = {
            f.result(timeout=60) for f in [pool.submit(_pid_after, 0.1) for _ in range(workers)]
        }
        startup = time.perf_counter() - start
        start = time.perf_counter()
        parallel = pool.map(count_primes, [limit] * jobs, chunksize=1)
        parallel_time = time.perf_counter() - start
        if parallel != serial:
            raise RuntimeError(
                f"the pool computed {parallel}, the serial run {serial}: please report this"
            )
        speedup = serial_time / parallel_time
        say(
            f"  on TaskPool({workers}):          {parallel_time:6.2f} s   (starting {len(pids)} workers took "
            f"{startup:.2f} s, once)"
        )
        cpus = os.cpu_count() or 1
        say(f"  speedup: {speedup:.2f}x (at most {min(workers, jobs, cpus)}x here)")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if load > cpus:
            # Other programs compete for the CPUs: the pool's workers get a share of them, not all.
            say(
                f"  (this machine is busy: load average {load:.1f} on {cpus} CPUs; expect less speedup than idle)"
            )

        say("")
        say(f"apply_async with a callback; this parent process is pid {os.getpid()}")
        seen: dict[str, Any] = {}

        def callback(where: dict[str, object]) -> None:
            # Runs in the parent, on the pool's event thread, once the job's result is back.
            seen.update(where)
            say(
                f"  callback ran in pid {os.getpid()} on thread {threading.current_thread().name!r}, "
                f"with the result of a job that ran in worker pid {where['pid']}"
            )

        pool.apply_async(whoami, callback=callback).get(timeout=60)
        say(f"  the job ran in pid {seen['pid']}, a child of pid {seen['ppid']}")
    return EXIT_OK


def _pid_after(delay: float) -> int:
    """This worker's pid after ``delay`` seconds (runs in a worker; keeps it busy while others start)."""
    time.sleep(delay)
    return os.getpid()


# -- the command line --------------------------------------------------------------------------------------


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    return _whole_number(text, 0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number > 0), not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds (a finite number > 0), not {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


RUN_EPILOG = """\
input:   one JSON value per line. An array is the positional arguments, an object the keyword
         arguments, anything else the single argument: [1, 2] -> f(1, 2); {"x": 1} -> f(x=1); 3 -> f(3).
         Blank lines are skipped. A line that is not JSON becomes an error record (type "InputError").
output:  one JSON line per input, in input order unless --unordered:
           {"index": 0, "ok": true, "result": ...}
           {"index": 1, "ok": false, "error": {"type": ..., "message": ..., "traceback": ...}}
exit:    0 all ok; 1 some inputs failed (summary on stderr); 2 usage or input error;
         130 interrupted by Ctrl-C (the lines written are kept: finish with --resume).
example: taskpool run taskpool.examples:collatz_steps --range 1 100001 --chunksize 200 -o steps.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``taskpool`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Run Python functions on a crash-proof process pool."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="time CPU-bound jobs serially and on a pool, and show a callback",
        description="Run a CPU-bound example serially and then on a TaskPool, print both timings and the "
        "speedup, and show an apply_async callback running in the parent. Needs no input.",
    )
    demo.add_argument(
        "--workers", type=_positive_int, default=2, help="worker processes (default: 2)"
    )
    demo.add_argument("--jobs", type=_positive_int, default=8, help="how many jobs (default: 8)")
    demo.add_argument(
        "--seconds",
        type=_seconds,
        default=0.25,
        help="about how long each job runs (default: 0.25)",
    )

    run = commands.add_parser(
        "run",
        help="apply MODULE:FUNCTION to every line of JSON Lines input (or to --range)",
        description="Call MODULE:FUNCTION once per input on a TaskPool, and write one JSON line per input. "
        "The input is read lazily and results are written as they are ready, so any input length runs "
        "in bounded memory. An input whose call fails becomes an error record; the run goes on.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "function",
        metavar="MODULE:FUNCTION",
        help="the function to call, importable from the current directory or sys.path "
        "(e.g. taskpool.examples:collatz_steps), or path/to/file.py:FUNCTION",
    )
    run.add_argument(
        "input", metavar="INPUT", nargs="?", help="JSON Lines file; '-' or none: stdin"
    )
    run.add_argument(
        "--range",
        nargs=2,
        type=_integer,
        metavar=("START", "STOP"),
        help="call FUNCTION(n) for each integer START <= n < STOP instead of reading INPUT",
    )
    run.add_argument(
        "-o", "--output", metavar="OUTPUT", help="where the JSON lines go (default: stdout)"
    )
    run.add_argument(
        "--workers", type=_positive_int, default=None, help="workers (default: the CPU count)"
    )
    run.add_argument(
        "--backend",
        choices=("process", "thread", "inline", "dask"),
        default="process",
        help="process (default; CPU-bound work), thread (I/O-bound work), inline (debugging), dask",
    )
    run.add_argument(
        "--address", help="the Dask scheduler address, e.g. tcp://host:8786 (--backend dask)"
    )
    run.add_argument(
        "--start-method",
        choices=("forkserver", "spawn", "fork"),
        default=None,
        help="how worker processes start (default: forkserver on Linux, spawn elsewhere)",
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="seconds a job may run; past it, it fails with JobTimeoutError and its worker is replaced",
    )
    run.add_argument(
        "--retries",
        type=_count,
        default=0,
        metavar="N",
        help="run a failing input up to N more times: Retry(attempts=N+1) that also covers a worker "
        "crash (on_crash) and a timeout (on_timeout); a result JSON cannot encode is not retried",
    )
    run.add_argument(
        "--chunksize",
        type=_positive_int,
        default=1,
        help="inputs per job (default: 1). Larger amortizes overhead for tiny jobs (try 100); "
        "--timeout then applies to the whole chunk, and a crash or timeout fails or reruns it whole",
    )
    run.add_argument(
        "--unordered",
        action="store_true",
        help="write each line as soon as its job finishes, in any order (default: input order)",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue into an existing OUTPUT: skip the inputs it has a record for (ok or not), drop a "
        "torn last line, and append the rest",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``taskpool`` console script and ``python -m taskpool``; returns the exit status (main thread)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return demo_command(args, sys.stdout)
        return run_command(args)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover - `python -m taskpool._cli`
    sys.exit(main())
