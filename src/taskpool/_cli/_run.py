"""``taskpool run``: apply a function to every input on a `TaskPool` and write one JSON line per input.

How its threads and processes share the work:

- the reader thread (``taskpool-cli-reader``, see `taskpool._cli._input`) reads and decodes the input lazily
  and hands chunks of it to the main thread through ``events``, within a `Budget` of chunks and bytes read
  and not yet written: memory stays bounded, however long the input and its lines.
- the main thread (this module) submits chunks to the pool and is the only writer of the output
  (`taskpool._cli._output`, opened and locked before the run). It writes each burst of finished lines at
  once: at once with ``--unordered``, otherwise as soon as every earlier input is written, and gives the
  chunks' share of the budget back. Ctrl-C (KeyboardInterrupt) or SIGTERM reaches it: it keeps what is
  written, terminates the pool, and exits 130 or 143. It always ends with the summary on stderr.
- while the pool runs, ``sys.stdout`` and ``sys.stderr`` of this process are a `LinesPastBars` on stderr, so
  that what jobs print (forwarded from the workers, or printed by in-process backends) never reaches stdout,
  the data channel, nor the progress bar's line.
- the pool's event thread runs the futures' done-callbacks, which only put the finished chunk on ``events``.
- worker processes run `taskpool._cli._worker`'s wrappers, which call the user's function and encode its
  result as JSON there, so that a result JSON cannot encode fails that input alone.

This module holds no lock; the two queues and the budget's condition are the only shared objects.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from .._core.indexset import IndexSet
from .._core.screen import LinesPastBars
from .._runtime.seeding import MAP
from ._input import Budget, Chunk, Reader, json_lines, open_input, range_items
from ._output import Output, OutputError, open_output
from ._records import error_line, exception_record, ok_line
from ._resolve import resolve
from ._resume import Previous, read_previous
from ._status import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    PROG,
    UsageError,
)
from ._summary import Tally, print_summary
from ._timeline import TimelineFiles, check_timeline, write_timeline
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
# in ordered mode drop fewer finished-but-unwritten results. --read-ahead bounds the same window in bytes.
WINDOW_PER_WORKER = 64

# The most events the main thread handles between two writes of the output: one write covers a burst of
# lines (fewer syscalls), yet a steady stream of events cannot hold written lines back for long.
DRAIN_BURST = 256


class _Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread by the signal handler so the run stops as on Ctrl-C."""


class _Run:
    """One ``taskpool run``: submits the reader's chunks and writes their lines (main thread)."""

    def __init__(
        self,
        args: argparse.Namespace,
        fn: Callable[..., Any],
        out: Output,
        total: int | None,
        stderr: IO[str] | None,
        initial: int = 0,
    ) -> None:
        from .. import Retry, TaskPool

        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
        self.out = out
        self.key = "value" if args.range is not None else "line"  # how a record names its input
        self.ordered = not args.unordered
        self.chunksize: int = args.chunksize
        self.attempts: int = args.retries + 1
        self.seed: int | None = args.seed
        self.tally = Tally()
        self.events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # ordered mode: the chunks not yet written, in input order
        self.waiting: deque[Chunk] = deque()
        self.in_flight = 0  # chunks handed over by the reader and not yet written
        self.pending: list[Chunk] = []  # finished chunks whose lines _write writes together
        self.reader: Reader | None = None
        kwargs: dict[str, Any] = {"backend": args.backend}
        if args.start_method is not None:
            kwargs["start_method"] = args.start_method
        if args.address is not None:
            kwargs["address"] = args.address
        self.pool = TaskPool(args.workers, timeline=args.timeline is not None, **kwargs)
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
            backup = args.backup_after
            self.view = self.pool.options(timeout=args.timeout, retry=retry, backup_after=backup)
        except BaseException:
            self.pool.terminate()
            raise
        self.budget = Budget(max(2, self.pool.workers * WINDOW_PER_WORKER), args.read_ahead * 2**20)
        self.bar: Any = None
        if args.progress is not False and stderr is not None:
            from .._core.progress import make_bar

            disable = None if args.progress is None else False
            self.bar = make_bar({"disable": disable, "file": stderr, "initial": initial}, total)

    def run(self, items: Iterator[Item], skip: IndexSet) -> None:
        """Run every input and write its line; returns when all are written (main thread).

        Raises:
            UsageError: the input could not be read; the lines written so far are kept.
        """
        self.reader = Reader(items, skip, self.chunksize, self.budget, self.events)
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
        taken = [
            (i, c) for i, c in zip(chunk.indices, chunk.calls, strict=True) if isinstance(c, tuple)
        ]
        if not taken:  # every input of the chunk was malformed: nothing to run
            self._finish_chunk(chunk, [])
            return
        calls = [c for _, c in taken]
        # By the input's index, as item `index` of a first map call on TaskPool(seed=N) would get.
        seeds = None if self.seed is None else [(self.seed, MAP, 0, i) for i, _ in taken]
        future: JobFuture[Any]
        # Named after the function and the input, so that a crash or timeout message says which one failed.
        if self.chunksize == 1:
            args, kwargs = calls[0]
            view = self.view.options(name=f"{self.name}[{chunk.indices[0]}]")
            future = view.submit(call_one, self.fn, args, kwargs, seeds[0] if seeds else None)
        else:
            view = self.view.options(name=f"{self.name}[{chunk.indices[0]}..{chunk.indices[-1]}]")
            future = view.submit(call_chunk, self.fn, calls, self.attempts, seeds)
        events = self.events
        future.add_done_callback(lambda f: events.put(("done", (chunk, f))))

    def _finish(self, payload: tuple[Chunk, JobFuture[Any]]) -> None:
        chunk, future = payload
        ran = sum(1 for c in chunk.calls if isinstance(c, tuple))
        if future.cancelled():
            return  # only after terminate; nothing more is written
        error = future.exception()
        if error is not None:
            record = exception_record(error, future.attempts)
            envelopes: list[Envelope] = [(False, record)] * ran
        elif self.chunksize == 1:
            envelopes = [(True, future.result())]
        else:
            envelopes = future.result()
        self._finish_chunk(chunk, envelopes)

    def _finish_chunk(self, chunk: Chunk, envelopes: list[Envelope]) -> None:
        results = iter(envelopes)
        for index, where, call in zip(chunk.indices, chunk.where, chunk.calls, strict=True):
            ok, payload = next(results) if isinstance(call, tuple) else (False, call)
            payload = cast("Any", payload)  # JSON text when ok, else an error record
            if ok:
                chunk.lines.append(ok_line(index, self.key, where, payload))
            else:
                chunk.lines.append(error_line(index, self.key, where, payload))
                chunk.failures.append((index, payload))
        chunk.done = True
        if not self.ordered:
            self.pending.append(chunk)

    def _write(self) -> None:
        """Write the finished chunks' lines in one go, then count them (main thread)."""
        while self.waiting and self.waiting[0].done:
            self.pending.append(self.waiting.popleft())
        if not self.pending:
            return
        self.out.write("".join(line for chunk in self.pending for line in chunk.lines))
        for chunk in self.pending:
            self.tally.ok += len(chunk.indices) - len(chunk.failures)
            for index, error in chunk.failures:
                self.tally.add_failure(index, error)
            if self.bar is not None:
                self.bar.update(len(chunk.indices))
            self.in_flight -= 1
            self.budget.give_back(chunk.nbytes)
        self.pending.clear()

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


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated


def _check(args: argparse.Namespace) -> None:
    if args.input is not None and args.range is not None:
        raise UsageError("give either an INPUT file or --range START STOP, not both")
    if args.range is not None and args.range[0] >= args.range[1]:
        start, stop = args.range
        raise UsageError(
            f"--range {start} {stop} is empty: it calls FUNCTION(n) for START <= n < STOP, "
            "so STOP must be greater than START"
        )
    if args.resume and args.output in (None, "-"):
        raise UsageError("--resume needs -o OUTPUT: the file whose records it continues")
    if args.backend != "process" and args.start_method is not None:
        raise UsageError(f"--start-method applies to the process backend, not to {args.backend!r}")


def run_command(args: argparse.Namespace) -> int:
    """``taskpool run``: returns the exit status (main thread).

    Raises:
        UsageError: bad arguments, unreadable input, or an output the safety rules forbid (exit status 2);
            nothing has run yet.
    """
    began = time.perf_counter()
    _check(args)
    picture = check_timeline(args, sys.stderr)
    fn = resolve(args.function)
    stream: IO[bytes] | None = None
    if args.range is None:
        stream = open_input(args.input)
    try:
        out = open_output(args.output, resume=args.resume, overwrite=args.overwrite, source=stream)
        try:
            return _run(args, fn, stream, out, began, picture)
        finally:
            out.close()
    finally:
        if stream is not None and stream is not getattr(sys.stdin, "buffer", None):
            stream.close()


def _run(
    args: argparse.Namespace,
    fn: Callable[..., Any],
    stream: IO[bytes] | None,
    out: Output,
    began: float,
    picture: TimelineFiles | None,
) -> int:
    """Run every input into ``out`` (checked and locked), draw the run if asked, then print the summary
    (main thread)."""
    previous = read_previous(args.output) if args.resume else Previous(IndexSet())
    stderr = sys.stderr
    if previous.torn and stderr is not None:
        print(
            f"{PROG} run: dropped a torn last line of {args.output}; its input runs again",
            file=stderr,
        )
    total = None
    # The bar counts the whole input, with what an earlier run did already counted in at the start.
    initial = len(previous.done)
    if args.range is not None:
        total = args.range[1] - args.range[0]
        initial = previous.done.count_below(total)
        items: Iterator[Item] = range_items(*args.range)
    else:
        assert stream is not None
        items = json_lines(stream)
    old_sigterm = None
    if threading.current_thread() is threading.main_thread():
        old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    run: _Run | None = None
    stopped: str | None = None
    status = EXIT_OK
    try:
        # stdout is the data channel: what jobs print goes to stderr, past the progress bar.
        with _jobs_print_to_stderr(stderr):
            try:
                run = _Run(args, fn, out, total, stderr, initial)
            except (ValueError, TypeError, ImportError) as exc:
                raise UsageError(str(exc)) from None
            try:
                run.run(items, previous.done)
            except BaseException:
                run.close(terminate=True)
                raise
            run.close(terminate=False)
    except (KeyboardInterrupt, _Terminated) as exc:
        if run is None:
            raise KeyboardInterrupt from None
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated"
        stopped = f"{what}: the lines written are kept, rerun with --resume to finish"
        status = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_TERMINATED
    except BrokenPipeError:
        # The reader of our output went away (`... | head`): stop quietly, as a killed writer would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (OutputError, UsageError) as exc:
        if run is None:
            raise UsageError(str(exc)) from None
        # A full disk, or an input that became unreadable: what was written is whole records, at worst
        # with a torn last line that --resume drops.
        stopped = f"stopped: {exc}; the lines written so far are kept"
        if out.name != "stdout":
            stopped += ", finish with --resume"
        status = EXIT_USAGE
    finally:
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)
    assert run is not None
    unwritten = write_timeline(run.pool, picture) if picture is not None else None
    if unwritten is not None:
        stopped = f"{stopped}; {unwritten}" if stopped else unwritten
        status = status or EXIT_USAGE
    print_summary(
        run.tally, previous, time.perf_counter() - began, out.name, stderr, stopped=stopped
    )
    if status == EXIT_OK and (run.tally.failed or previous.failed):
        status = EXIT_FAILED
    return status


@contextlib.contextmanager
def _jobs_print_to_stderr(stderr: IO[str] | None) -> Iterator[None]:
    """Send what is written to stdout or stderr in this process while the pool runs (what jobs print,
    forwarded from the workers or printed by the thread and inline backends' jobs) to ``stderr``, whole
    lines at a time, past the progress bar."""
    sink: Any = LinesPastBars(stderr) if stderr is not None else open(os.devnull, "w")  # noqa: SIM115
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        sink.flush()
