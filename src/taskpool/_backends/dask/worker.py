"""The Dask backend's worker side: what runs inside Dask worker processes.

`run` is the Dask task of every attempt: it runs in a task thread of a Dask worker (several at once on a worker
with several threads), says that the attempt began, runs the job with its log records and printed lines
captured (`_Capture`, one per task thread), and returns an `Envelope`. `InitializerPlugin` runs the pool's
initializer in each worker's main thread, once per worker.

Several jobs may run at once in one worker process, and the worker's own threads log and print too: captures
are registered by thread id, and `_capture_lock` guards the registry, the process-wide stand-ins for
``sys.stdout`` / ``sys.stderr`` and the root logger's level. A capture's buffers belong to its task thread.

Imports the standard library, `taskpool._runtime` and the message types in `.protocol` (which import the
standard library only), and ``distributed``, which every Dask worker has.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

from ..._runtime.attempt import (
    JobKind,
    call,
    encode_error,
    encode_value,
    format_traceback,
    thread_job,
)
from ..._runtime.output import LineSplitter, prepare_record
from ..._runtime.serialize import loads_checked
from .protocol import Envelope, Status, started_event, started_topic

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._runtime.seeding import SeedKey

__all__ = ["InitializerPlugin", "run"]

# distributed is an optional dependency of taskpool, and its annotations are partial: it is handled as Any.
# The parent imports this module too (for `run` and the plugin), also when distributed is missing: the
# backend's constructor then says what to install.
try:
    distributed: Any = importlib.import_module("distributed")
    _WorkerPlugin: Any = importlib.import_module("distributed.diagnostics.plugin").WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without the extra installed
    distributed = None
    _WorkerPlugin = object

# Initializer failures in this worker process, by pool token (a worker may serve several pools).
_init_failures: dict[str, str] = {}

# Per-thread capture of log records and output: the task thread that runs a job registers its buffers here, so
# that jobs running at the same time in other threads of the same worker do not see each other's lines.
_captures: dict[int, _Capture] = {}
_capture_lock = threading.Lock()
# The root logger's level is lowered to the parent's while jobs run; how many jobs run and the level to restore.
_level_state: list[Any] = [0, logging.WARNING]


class InitializerPlugin(_WorkerPlugin):  # type: ignore[misc]
    """Runs the pool's initializer once in every Dask worker, current and future (in the worker's main thread).

    Made in the parent and pickled to each worker by Dask.
    """

    idempotent = False

    def __init__(
        self, token: str, initializer: Callable[..., object], initargs: tuple[Any, ...]
    ) -> None:
        self.token = token
        self.initializer = initializer
        self.initargs = initargs

    def setup(self, worker: Any) -> None:
        try:
            self.initializer(*self.initargs)
        except BaseException as exc:
            # Remembered so that jobs reaching this worker later fail with InitializerError; raised so that
            # registering the plugin on the workers already there fails at once.
            _init_failures[self.token] = f"{type(exc).__name__}: {exc}\n{format_traceback(exc)}"
            raise

    def teardown(self, worker: Any) -> None:
        _init_failures.pop(self.token, None)


class _ThreadStream(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr in a Dask worker: a thread running a job writes to its capture,
    every other thread to the original stream."""

    def __init__(self, original: TextIO, stream: str) -> None:
        super().__init__()
        self.original = original
        self.stream = stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        capture = _captures.get(threading.get_ident())
        if capture is None:
            return self.original.write(s)
        capture.write(self.stream, s)
        return len(s)

    def flush(self) -> None:
        if threading.get_ident() not in _captures:
            self.original.flush()

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        return False


class _RecordCollector(logging.Handler):
    """Collects the log records a job's thread makes, made picklable (installed on the worker's root logger)."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _captures.get(record.thread or 0)
        if capture is None:
            return  # a record from another thread: Dask's own, or another job's
        try:
            capture.records.append(prepare_record(record, capture.job_id, capture.name))
        except Exception:
            self.handleError(record)


_collector = _RecordCollector(logging.NOTSET)


class _Capture:
    """The log records and output lines of one running job (owned by its task thread)."""

    def __init__(self, job_id: int, name: str, level: int) -> None:
        self.job_id = job_id
        self.name = name
        self.level = level
        self.records: list[bytes] = []
        self.output: list[tuple[str, str]] = []
        self._lines = {"stdout": LineSplitter(), "stderr": LineSplitter()}

    def write(self, stream: str, s: str) -> None:
        lines = self._lines[stream].feed(s)
        if lines:
            self._add(stream, lines)

    def _add(self, stream: str, text: str) -> None:
        # Consecutive writes to the same stream travel as one piece: fewer reports, lines kept whole.
        if self.output and self.output[-1][0] == stream:
            self.output[-1] = (stream, self.output[-1][1] + text)
        else:
            self.output.append((stream, text))

    def __enter__(self) -> _Capture:
        with _capture_lock:
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if not isinstance(current, _ThreadStream):
                    setattr(sys, name, _ThreadStream(current, name))
            root = logging.getLogger()
            if _collector not in root.handlers:
                root.addHandler(_collector)
            if _level_state[0] == 0:
                _level_state[1] = root.level
            _level_state[0] += 1
            # Records below the root's level would never reach the collector; the parent decides what to show.
            if root.level == logging.NOTSET or root.level > self.level:
                root.setLevel(self.level)
            _captures[threading.get_ident()] = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        with _capture_lock:
            del _captures[threading.get_ident()]
            _level_state[0] -= 1
            if _level_state[0] == 0:
                logging.getLogger().setLevel(_level_state[1])
        for stream, lines in self._lines.items():
            rest = lines.rest()
            if rest:
                self._add(stream, rest)


def run(
    token: str,
    key: str,
    fn_data: bytes,
    args_data: bytes,
    kind: int,
    name: str,
    job_id: int,
    announce: bool,
    level: int,
    seed: SeedKey | None = None,
) -> Envelope:
    """Run one attempt of a job (in a Dask worker's task thread) and return its envelope.

    Args:
        token: the pool's token (its initializer's failures and its STARTED topic are kept by it).
        key: the attempt's Dask task key.
        fn_data: the pickled function.
        args_data: the pickled ``(args, kwargs)``; for the chunk kinds ``args`` holds the chunk alone.
        kind: the job's `JobKind`.
        name: the job's name, for errors and log records.
        job_id: the job's id, for log records.
        announce: whether to say on the pool's topic that the attempt began.
        level: the parent's root logging level: records below it are not collected.
        seed: the job's `SeedKey` (None when the pool has no seed).
    """
    worker = distributed.get_worker()
    address, pid = worker.address, os.getpid()
    if announce:
        with contextlib.suppress(Exception):  # a lost event only costs the STARTED report
            worker.log_event(started_topic(token), started_event(key, address, pid))
    failure = _init_failures.get(token)
    if failure is not None:
        return Envelope(Status.INIT_FAILED, failure, "", [], [], address, pid)
    with _Capture(job_id, name, level) as capture:
        # Loggers made by get_logger tag records with the job this thread runs; other jobs may run in other
        # task threads of this worker at the same time, so the job is per thread, not per process.
        running = thread_job.set((job_id, name))
        try:
            fn = loads_checked(fn_data, "function", "worker", name)
            args, kwargs = loads_checked(args_data, "arguments", "worker", name)
            value = call(fn, kind, args if kind == JobKind.CALL else args[0], kwargs, seed)
            status, data, tb = Status.OK, encode_value(value, name, split=False), ""
        except BaseException as exc:
            status = Status.ERROR
            data, tb = encode_error(exc, name)
        finally:
            thread_job.reset(running)
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
    return Envelope(status, data, tb, capture.records, capture.output, address, pid)
