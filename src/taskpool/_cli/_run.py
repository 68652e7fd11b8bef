"""``taskpool run``: apply a function to every input on a `TaskPool` and write one JSON line per input.

How its threads and processes share the work:

- the reader thread (``taskpool-cli-reader``, see `taskpool._cli._input`) reads and decodes the input lazily
  and hands chunks of it to the main thread through ``events``, taking a credit per chunk: at most ``window``
  chunks are in memory, however long the input.
- the main thread (this module) submits chunks to the pool and is the only writer of the output. It writes
  (and flushes) each result line as soon as it may: at once with ``--unordered``, otherwise as soon as every
  earlier input is written, and gives the chunk's credit back. Ctrl-C (KeyboardInterrupt) or SIGTERM reaches
  it: it keeps what is written, terminates the pool, and exits 130 or 143.
- the pool's event thread runs the futures' done-callbacks, which only put the finished chunk on ``events``.
- worker processes run `taskpool._cli._worker`'s wrappers, which call the user's function and encode its
  result as JSON there, so that a result JSON cannot encode fails that input alone.

No lock is held by this module; the two queues and the semaphore are the only shared objects.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from ._input import Chunk, Reader, json_lines, open_input, range_items
from ._records import error_line, exception_record, ok_line
from ._resolve import resolve
from ._resume import IndexSet, Previous, read_previous
from ._status import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PROG,
    SHOWN_FAILURES,
    UsageError,
)
from ._worker import Envelope, ResultNotJSONError, call_chunk, call_one

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator
    from types import FrameType

    from .._core.future import JobFuture
    from ._input import Item

__all__ = ["run_command"]

# Chunks in flight (read, submitted or waiting to be written) per worker. More keeps workers busy when jobs
# are tiny (the main thread's round trip hides behind the queue); fewer keeps memory lower and makes Ctrl-C
# in ordered mode drop fewer finished-but-unwritten results.
WINDOW_PER_WORKER = 64

# The most events the main thread handles between two flushes of the output: one flush covers a burst of
# lines (fewer syscalls), yet a steady stream of events cannot hold written lines back for long.
DRAIN_BURST = 256


class _Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread by the signal handler so the run stops as on Ctrl-C."""


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
        self, args: argparse.Namespace, fn: Callable[..., Any], out: IO[str], skip: IndexSet
    ) -> None:
        from .. import Retry, TaskPool

        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        self.out = out
        self.ordered = not args.unordered
        self.chunksize: int = args.chunksize
        self.attempts: int = args.retries + 1
        self.tally = _Tally()
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # ordered mode: the chunks not yet written, in input order
        self.waiting: deque[Chunk] = deque()
        self.in_flight = 0  # chunks handed over by the reader and not yet written
        self.reader: Reader | None = None
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
                else:  # call_chunk retries each input's own exceptions itself
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

    def run(self, items: Iterator[Item], skip: IndexSet) -> None:
        """Run every input and write its line; returns when all are written (main thread).

        Raises:
            UsageError: the input could not be read; the lines written so far are kept.
        """
        self.reader = Reader(items, skip, self.chunksize, self.window, self.events)
        self.reader.start()
        ended = False
        while not ended or self.in_flight:
            try:
                kind, payload = self.events.get(timeout=1.0)
            except queue.Empty:
                continue
            batch = [(kind, payload)]
            # Take whatever else is ready: one flush covers the burst.
            while len(batch) < DRAIN_BURST:
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

    def _submit(self, chunk: Chunk) -> None:
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
            future = view.submit(call_one, self.fn, args, kwargs)
        else:
            view = self.view.options(name=f"{self.name}[{chunk.indices[0]}..{chunk.indices[-1]}]")
            future = view.submit(call_chunk, self.fn, calls, self.attempts)
        events = self.events
        future.add_done_callback(lambda f: events.put(("done", (chunk, f))))

    def _finish(self, payload: tuple[Chunk, JobFuture[Any]]) -> None:
        chunk, future = payload
        ran = sum(1 for c in chunk.calls if isinstance(c, tuple))
        if future.cancelled():
            return  # only after terminate; nothing more is written
        error = future.exception()
        if error is not None:
            envelopes: list[Envelope] = [(False, exception_record(error))] * ran
        elif self.chunksize == 1:
            envelopes = [(True, future.result())]
        else:
            envelopes = future.result()
        self._finish_chunk(chunk, envelopes)

    def _finish_chunk(self, chunk: Chunk, envelopes: list[Envelope]) -> None:
        results = iter(envelopes)
        for index, call in zip(chunk.indices, chunk.calls, strict=True):
            ok, payload = next(results) if isinstance(call, tuple) else (False, call)
            payload = cast("Any", payload)  # JSON text when ok, else an error record
            if ok:
                chunk.lines.append(ok_line(index, payload))
            else:
                chunk.lines.append(error_line(index, payload))
                chunk.failures.append((index, payload))
        chunk.done = True
        if not self.ordered:
            self._emit(chunk)

    def _write(self) -> None:
        while self.waiting and self.waiting[0].done:
            self._emit(self.waiting.popleft())
        self.out.flush()

    def _emit(self, chunk: Chunk) -> None:
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
    tally: _Tally, previous: Previous, stderr: IO[str], *, interrupted: str | None = None
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
    previous = read_previous(args.output) if args.resume else Previous(IndexSet())
    if previous.torn:
        print(
            f"{PROG} run: dropped a torn last line of {args.output}; its input runs again",
            file=sys.stderr,
        )
    if args.range is not None:
        items: Iterator[Item] = range_items(*args.range)
        stream = None
    else:
        stream = open_input(args.input)
        items = json_lines(stream)
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
    except OSError as exc:
        # The output cannot be written (disk full, ...): what was flushed is kept.
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
    # Closed, or the disk or pipe failed: there is nothing to save.
    with contextlib.suppress(OSError, ValueError):
        out.flush()
