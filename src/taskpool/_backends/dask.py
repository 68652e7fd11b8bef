"""The Dask backend: runs jobs on a Dask distributed cluster, for when one machine is not enough.

Processes and threads
---------------------
::

    parent process (the pool)                           Dask scheduler            Dask worker processes
    caller threads ── submit() ── pickle fn+args ──►  client.submit(_run) ────►  task thread: _run()
                                                                                  ├─ log_event("started")
    client event-loop thread  ◄── STARTED (topic) ◄──────────────────────────────┘  (only when wanted)
      └─ _on_started: report STARTED, arm the deadline
    Dask's callback thread    ◄── task finished ◄──────────────────────────────── envelope (result or error,
      └─ _on_done: fetch the envelope, report LOG, OUTPUT, then SUCCEEDED / FAILED     log records, output)
    "taskpool-dask-timer" thread (exactly 1): deadlines (JobTimeoutError) and failures found in submit()

The parent side never holds a lock while it calls into Dask or the sink: ``_lock`` guards only ``_live`` (the
attempts sent to Dask and not yet reported), ``_by_job`` and the deadline heap. Whoever removes an attempt from
``_live`` (the done callback, the timer, `stop`, `shutdown`) is the one that reports its outcome, so every
attempt gets exactly one terminal report.

What differs from the process backend (docs/scaling-out.md has the table):

* **Timeouts and stop** end the job's *future* on time (JobTimeoutError, or STOPPED) and cancel the Dask task,
  so a task that has not started never runs. A running task cannot be interrupted inside Dask (it runs in a
  thread of the worker process): on a cluster started here, whose workers run one job each, the worker process
  is killed and its nanny starts a new one, as the process backend does; on an existing cluster the task runs
  to its end on the worker and its result is thrown away. The clock of a timeout starts when the job starts
  on a worker (reported through the scheduler), not at submission.
* **Crashes**: a worker that dies while running a job fails it with `WorkerCrashedError` (pid of the Dask
  worker, exit code unknown). A cluster started here fails the job at the first death (Dask's
  ``allowed-failures`` is set to 0, and each worker holds one task at a time, so queued jobs are not hit);
  an existing cluster uses its own ``allowed-failures`` (Dask's default reruns a task on up to 3 more workers
  before it gives up).
* **Logs and prints** made in the job's own thread are captured on the worker and reported when the job ends
  (not live), log records before the outcome.
* **STARTED** is reported when the worker begins the task: the worker sends a Dask event through the
  scheduler (one small message per job, sent always: it also arms timeouts and tells a crashed job from the
  jobs that were only waiting on the same worker).
* **Shared state** (`pool.shared`) is not available: the Manager lives on the parent's machine. Use Dask's own
  ``distributed.Lock``, ``Variable`` or ``Queue``.
* Workers are Dask's: their ids in reports are Dask worker addresses (``"tcp://host:port"``). There are no
  WORKER_UP / WORKER_DOWN reports; Dask's nannies restart dead workers.
* taskpool (and the modules that hold your job functions) must be importable on every worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import importlib
import io
import itertools
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from typing import TYPE_CHECKING, Any, TextIO

from .._core.reports import ReportKind
from .._errors import (
    DaskConnectionError,
    InitializerError,
    JobTimeoutError,
    RemoteTraceback,
    SerializationError,
    TaskpoolError,
    WorkerCrashedError,
)
from .._runtime.attempt import JobKind
from .._runtime.serialize import dumps, dumps_function, loads_checked

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._core.job import Job
    from .._core.reports import Report, Sink

__all__ = ["DaskBackend", "DaskConnectionError"]

# distributed is an optional dependency, and its annotations are partial: it is handled as Any here.
try:
    distributed: Any = importlib.import_module("distributed")
    _dask_config: Any = importlib.import_module("dask.config")
    _WorkerPlugin: Any = importlib.import_module("distributed.diagnostics.plugin").WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without the extra installed
    distributed = None
    _dask_config = None
    _WorkerPlugin = object

# How long connecting to an existing scheduler may take before the pool gives up. Longer: tolerates a slow
# network or a scheduler that is still starting; shorter: a wrong address fails sooner.
CONNECT_TIMEOUT = 10.0
# How long fetching a finished job's result from its worker may take. It only runs out when the worker holding
# the result is gone and Dask cannot recompute it in time; the job then fails as crashed.
RESULT_TIMEOUT = 60.0
# Bounds on shutdown: closing the client, then the cluster that this backend started.
CLOSE_TIMEOUT = 5.0
CLUSTER_CLOSE_TIMEOUT = 10.0

# How often a job is sent again, silently, because the worker it waited on died before the job began there
# (a cluster started here only). Bounded because a job that kills its worker at once may die before its
# worker could say that it began.
MAX_REQUEUES = 2

# Envelope status codes returned by `_run`.
_OK = 0
_ERROR = 1
_INIT_FAILED = 2


# ---------------------------------------------------------------------------------------------------------
# Worker side: everything below up to DaskBackend runs in Dask worker processes.
# ---------------------------------------------------------------------------------------------------------

# Initializer failures in this worker process, by pool token (a worker may serve several pools).
_init_failures: dict[str, str] = {}

# Per-thread capture of log records and output: the task thread that runs a job registers its buffers here, so
# that jobs running at the same time in other threads of the same worker do not see each other's lines.
_captures: dict[int, _Capture] = {}
_capture_lock = threading.Lock()
# The root logger's level is lowered to the parent's while jobs run; how many jobs run and the level to restore.
_level_state: list[Any] = [0, logging.WARNING]


def _format_tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


class _InitializerPlugin(_WorkerPlugin):  # type: ignore[misc]
    """Runs the pool's initializer once in every Dask worker, current and future (in the worker's main thread)."""

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
            _init_failures[self.token] = f"{type(exc).__name__}: {exc}\n{_format_tb(exc)}"
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
            capture.records.append(_prepare_record(record, capture.job_id, capture.name))
        except Exception:
            self.handleError(record)


_collector = _RecordCollector(logging.NOTSET)


def _prepare_record(record: logging.LogRecord, job_id: int, name: str) -> bytes:
    """Pickle a log record the way logging.handlers.QueueHandler.prepare makes it sendable: the message and
    the traceback become text here, where the arguments and the exception still exist."""
    record.message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.msg, record.args, record.exc_info = record.message, None, None
    if not hasattr(record, "job_id"):
        record.job_id, record.job_name = job_id, name
    try:
        return pickle.dumps(record, protocol=5)
    except Exception:
        # An attribute added with extra= does not pickle: send its repr rather than lose the record.
        for key, value in list(record.__dict__.items()):
            try:
                pickle.dumps(value, protocol=5)
            except Exception:
                record.__dict__[key] = repr(value)
        return pickle.dumps(record, protocol=5)


class _Capture:
    """The log records and output lines of one running job (owned by its task thread)."""

    def __init__(self, job_id: int, name: str, level: int) -> None:
        self.job_id = job_id
        self.name = name
        self.level = level
        self.records: list[bytes] = []
        self.output: list[tuple[str, str]] = []
        self._partial = {"stdout": "", "stderr": ""}

    def write(self, stream: str, s: str) -> None:
        text = self._partial[stream] + s
        cut = text.rfind("\n") + 1
        self._partial[stream] = text[cut:]
        if cut:
            self._add(stream, text[:cut])

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
        for stream, rest in self._partial.items():
            if rest:
                self._add(stream, rest)


Envelope = tuple[int, Any, str, list[bytes], list[tuple[str, str]], str, int]


def _run(
    token: str,
    key: str,
    fn_data: bytes,
    args_data: bytes,
    kind: int,
    name: str,
    job_id: int,
    announce: bool,
    level: int,
) -> Envelope:
    """Run one attempt of a job (in a Dask worker's task thread) and return its envelope.

    The envelope is ``(status, data, traceback text, log records, output, worker address, pid)``; ``data`` is
    the pickled result or exception, so a part that does not pickle is named here rather than failing inside
    Dask's own machinery.
    """
    worker = distributed.get_worker()
    address, pid = worker.address, os.getpid()
    if announce:
        with contextlib.suppress(Exception):  # a lost event only costs the STARTED report
            worker.log_event(f"taskpool-started-{token}", [key, address, pid])
    failure = _init_failures.get(token)
    if failure is not None:
        return (_INIT_FAILED, failure, "", [], [], address, pid)
    with _Capture(job_id, name, level) as capture:
        try:
            fn = loads_checked(fn_data, "function", "worker", name)
            args, kwargs = loads_checked(args_data, "arguments", "worker", name)
            if kind == JobKind.CALL:
                value = fn(*args, **kwargs)
            elif kind == JobKind.CHUNK:
                value = [fn(item) for item in args[0]]
            else:
                value = list(itertools.starmap(fn, args[0]))
            status, data, tb = _OK, dumps(value, "result", "worker", name), ""
        except BaseException as exc:
            status, tb = _ERROR, _format_tb(exc)
            exc.__traceback__ = None  # it does not pickle; its text travels separately
            try:
                data = dumps(exc, "exception", "worker", name)
            except SerializationError as err:
                reason = f"{err.reason}; the job raised {type(exc).__name__}: {exc}"
                data = dumps(
                    SerializationError("exception", "pickle", "worker", name, reason),
                    "exception",
                    "worker",
                )
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
    return (status, data, tb, capture.records, capture.output, address, pid)


# ---------------------------------------------------------------------------------------------------------
# Parent side.
# ---------------------------------------------------------------------------------------------------------


class _Attempt:
    """One attempt of a job sent to Dask (parent side)."""

    __slots__ = (
        "deadline",
        "future",
        "job",
        "key",
        "payload",
        "pid",
        "requeues",
        "started",
        "worker",
    )

    def __init__(self, job: Job, key: str, payload: tuple[bytes, bytes], requeues: int) -> None:
        self.job = job
        self.key = key
        self.payload = payload
        self.requeues = requeues  # how often this attempt was sent again because its worker died before it began
        self.future: Any = None  # the distributed.Future, once client.submit returned
        self.worker: str | None = None
        self.pid: int | None = None
        self.started = False  # STARTED reported
        self.deadline: float | None = None


class DaskBackend:
    """Runs a pool's jobs on a Dask cluster: a local one it starts, or an existing one it connects to.

    Constructed by the pool (in the caller's thread); raises at once when the cluster cannot be started or
    reached, so `TaskPool(backend="dask", address=...)` fails fast on a wrong address.

    Args:
        workers: for a local cluster, how many single-threaded worker processes to start. Ignored for an
            existing cluster, whose worker threads are counted instead.
        address: None (start a local cluster on 127.0.0.1), a scheduler address ``"tcp://host:port"``, or a
            ``distributed.Client`` (which stays open after the pool shuts down).
        initializer: run once in every worker (also workers that join later) with ``initargs``.
        connect_timeout: seconds to wait for the scheduler at ``address``.
    """

    name = "dask"
    supports_timeout = True
    supports_stop = True
    start_method: str | None = None
    shared_state_unavailable: str | None = (
        "pool.shared is not available on the dask backend: a Manager process on this machine is out of "
        "reach of remote workers. Use distributed.Lock, distributed.Variable or distributed.Queue instead"
    )

    def __init__(
        self,
        workers: int,
        *,
        address: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        if distributed is None:
            raise ImportError(
                "the dask backend needs the 'distributed' package: pip install 'taskpool[dask]'"
            )
        self._token = uuid.uuid4().hex
        self._topic = f"taskpool-started-{self._token}"
        self._cluster: Any = None
        self._owns_client = True
        if address is None:
            with _dask_config.set(
                {
                    # Fail a job at the first death of its worker, as the process backend does; the pool's
                    # Retry(on_crash=True) decides about reruns, not Dask.
                    # Dask reruns a task whose worker died up to allowed-failures times, and counts every task
                    # the worker held, running or waiting. At 0, the backend decides instead (see _on_done):
                    # the running job fails with WorkerCrashedError, the waiting ones are sent again.
                    "distributed.scheduler.allowed-failures": 0,
                }
            ):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # No dashboard, but the scheduler still serves HTTP (health, metrics): on a free port, as
                    # its default 8787 is taken as soon as two pools run at once.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
            try:
                self._client = distributed.Client(self._cluster, set_as_default=False)
            except BaseException:
                self._cluster.close(timeout=CLUSTER_CLOSE_TIMEOUT)
                raise
            self._address = str(self._cluster.scheduler_address)
        elif isinstance(address, distributed.Client):
            self._client = address
            self._owns_client = False
            self._address = str(address.scheduler.address)
        else:
            self._address = str(getattr(address, "scheduler_address", address))
            try:
                self._client = distributed.Client(
                    address, timeout=connect_timeout, set_as_default=False
                )
            except (OSError, TimeoutError) as exc:
                raise DaskConnectionError(
                    self._address, f"could not be reached within {connect_timeout:g} s ({exc})"
                ) from exc
        if self._cluster is None:
            self._check_versions()
        # Workers say when they begin a job, so that a crash is blamed on the running job only (see _on_done),
        # and for STARTED reports and timeouts. Costs one small message per job through the scheduler.
        self._announce = True
        if self._cluster is not None:
            self.workers = workers
        else:
            self.workers = max(1, sum(self._client.nthreads().values()))

        self._lock = threading.Lock()
        self._live: dict[str, _Attempt] = {}
        self._by_job: dict[int, str] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._immediate: list[Report] = []
        self._seq = itertools.count()
        self._wakeup = threading.Condition(self._lock)
        self._closed = False
        self._want_started = False
        self._broken_reported = False
        self._sink: Sink | None = None
        self._fn_cache: tuple[Any, bytes] | None = (
            None  # (function, its pickle): map sends one function often
        )
        self._timer: threading.Thread | None = None

        self._init_error: InitializerError | None = None
        self._plugin_name: str | None = None
        if initializer is not None:
            self._plugin_name = f"taskpool-init-{self._token}"
            try:
                self._client.register_plugin(
                    _InitializerPlugin(self._token, initializer, initargs), name=self._plugin_name
                )
            except Exception as exc:
                self._init_error = InitializerError(f"{type(exc).__name__}: {exc}")
        self._client.subscribe_topic(self._topic, self._on_started)

    # -- the Backend protocol (caller threads) ------------------------------------------------------------
    def _check_versions(self) -> None:
        """Refuse a cluster whose packages differ from this client's where it matters (caller's thread).

        Dask's own check raises on mismatched required packages (Python, distributed, msgpack, cloudpickle,
        ...); a worker without taskpool, or with another version of it, could not run our jobs' envelopes.
        """
        try:
            versions = self._client.get_versions(check=True, packages=["taskpool"])
        except ValueError as exc:
            self._close_quietly()
            raise TaskpoolError(
                f"the Dask cluster at {self._address} runs package versions that differ from this client's: {exc}. "
                "Install the same versions on the client, the scheduler and every worker"
            ) from exc
        ours = versions["client"]["packages"].get("taskpool")
        for worker, info in versions.get("workers", {}).items():
            theirs = info.get("packages", {}).get("taskpool")
            if theirs != ours:
                self._close_quietly()
                raise TaskpoolError(
                    f"the Dask worker {worker} has taskpool {theirs or 'not installed'}, this client has {ours}; "
                    "install the same taskpool on every worker"
                )

    def _close_quietly(self) -> None:
        if self._owns_client:
            with contextlib.suppress(Exception):
                self._client.close(timeout=CLOSE_TIMEOUT)

    def start(self, sink: Sink) -> None:
        """Begin reporting to ``sink``; starts the timer thread (runs in the pool's constructor thread)."""
        self._sink = sink
        self._timer = threading.Thread(
            target=self._timer_loop, name="taskpool-dask-timer", daemon=True
        )
        self._timer.start()
        if self._init_error is not None:
            self._broken_reported = True
            self._defer([(ReportKind.BROKEN, None, None, None, None, self._init_error)])

    def want_started(self, enabled: bool) -> None:
        """Whether to report STARTED from now on (any thread); workers announce every job anyway."""
        self._want_started = enabled

    def submit(self, job: Job) -> None:
        """Send one attempt of ``job`` to Dask (any thread; does not wait for the job).

        The function and arguments are pickled here, so a part that does not pickle fails this job with a
        `SerializationError` that names it, and closures and lambdas go by value (cloudpickle).
        """
        if self._closed:
            raise RuntimeError("the dask backend is shut down")
        if job.future.cancelled():
            self._defer([(ReportKind.SKIPPED, job, None, None, None, None)])
            return
        if self._init_error is not None:
            self._defer([(ReportKind.FAILED, job, None, None, None, self._init_error)])
            return
        try:
            payload = job.payload
            if payload is None:
                payload = job.payload = (
                    self._pickle_function(job),
                    dumps((job.args, job.kwargs), "arguments", "parent", job.name),
                )
        except SerializationError as exc:
            self._defer([(ReportKind.FAILED, job, None, None, None, exc)])
            return
        self._send(job, payload, 0)

    def _send(self, job: Job, payload: tuple[bytes, bytes], requeues: int) -> None:
        """Hand one attempt to Dask (a caller thread, or Dask's callback thread for a requeue)."""
        if self._client.status != "running":
            error = DaskConnectionError(
                self._address, f"is not connected (client {self._client.status})", job.name
            )
            self._defer([(ReportKind.FAILED, job, None, None, None, error)])
            return
        key = f"{job.name}-{job.id}-{job.attempt}-{uuid.uuid4().hex}"
        attempt = _Attempt(job, key, payload, requeues)
        with self._lock:
            if self._closed:
                return
            # Registered before Dask knows the key, so a STARTED event can never arrive for an unknown key.
            self._live[key] = attempt
            self._by_job[job.id] = key
        try:
            future = self._client.submit(
                _run,
                self._token,
                key,
                payload[0],
                payload[1],
                job.kind,
                job.name,
                job.id,
                self._announce,
                logging.getLogger().getEffectiveLevel(),
                key=key,
                pure=False,
            )
        except Exception as exc:
            if self._settle(key) is not None:
                self._defer([(ReportKind.FAILED, job, None, None, None, exc)])
            return
        attempt.future = future
        with self._lock:
            settled = key not in self._live
        if settled:  # timed out or stopped before the future existed: cancel it now
            self._cancel([future])
            return
        future.add_done_callback(lambda fut, key=key: self._on_done(key, fut))

    def stop(self, job: Job) -> bool:
        """Stop ``job``: its future ends STOPPED at once and its Dask task is cancelled (any thread).

        A running job's worker is killed on a cluster started here; on an existing cluster the task runs to
        its end there (Dask cannot interrupt it) and its result is dropped.
        """
        with self._lock:
            key = self._by_job.get(job.id)
            attempt = self._live.get(key) if key is not None else None
        if attempt is None or attempt.job is not job or self._settle(attempt.key) is None:
            return False
        self._emit([(ReportKind.STOPPED, job, attempt.worker, attempt.pid, None, None)])
        self._halt([attempt])
        return True

    def shutdown(self, wait: bool) -> None:
        """Close the client, and the cluster if this backend started it (caller thread; bounded in time).

        Without ``wait``, jobs still on Dask are cancelled and get no report.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            leftover = [a.future for a in self._live.values() if a.future is not None]
            self._live.clear()
            self._by_job.clear()
            self._heap.clear()
            self._wakeup.notify_all()
        if self._timer is not None:
            self._timer.join(timeout=CLOSE_TIMEOUT)
        client = self._client
        connected = client.status == "running"
        if leftover and connected:
            self._cancel(leftover)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(self._topic)
        if self._owns_client:
            with contextlib.suppress(Exception):
                client.close(timeout=CLOSE_TIMEOUT)
        elif self._plugin_name is not None and connected:
            # A cluster we leave running must not keep running our initializer on the workers that join.
            _bounded(lambda: client.unregister_worker_plugin(self._plugin_name), CLOSE_TIMEOUT)
        if self._cluster is not None:
            if not wait:
                # A running task holds its worker process until the task returns; terminate does not wait.
                for pid, nanny in self._local_worker_pids().items():
                    with contextlib.suppress(Exception):
                        nanny.close_gracefully(
                            reason="taskpool-terminate"
                        )  # so it starts no new worker
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=CLUSTER_CLOSE_TIMEOUT)

    # -- reports ------------------------------------------------------------------------------------------
    def _emit(self, reports: list[Report]) -> None:
        sink = self._sink
        if sink is not None and reports:
            sink(reports)

    def _defer(self, reports: list[Report]) -> None:
        """Hand reports to the timer thread, so the sink is only ever called from the backend's threads."""
        with self._lock:
            self._immediate.extend(reports)
            self._wakeup.notify()

    def _settle(self, key: str) -> _Attempt | None:
        """Take an attempt out of ``_live``; the caller that gets it back reports its outcome."""
        with self._lock:
            attempt = self._live.pop(key, None)
            if attempt is not None and self._by_job.get(attempt.job.id) == key:
                del self._by_job[attempt.job.id]
        return attempt

    def _pickle_function(self, job: Job) -> bytes:
        cached = self._fn_cache
        if cached is not None and cached[0] is job.fn:
            return cached[1]
        data = dumps_function(job.fn, job.name)
        self._fn_cache = (job.fn, data)
        return data

    def _halt(self, attempts: list[_Attempt]) -> None:
        """Cancel attempts that timed out or were stopped, and kill the workers running them (any thread).

        Only the worker processes of a cluster started here are killed (their nannies start new ones): each
        runs one job at a time, so nothing else is lost. On an existing cluster a running task runs on.
        """
        self._cancel([a.future for a in attempts if a.future is not None])
        pids = {a.pid for a in attempts if a.pid is not None}
        if pids and self._cluster is not None:
            for pid in pids & set(self._local_worker_pids()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def _local_worker_pids(self) -> dict[int, Any]:
        """The worker processes of the cluster started here, by pid, with their nannies."""
        found: dict[int, Any] = {}
        for nanny in list(getattr(self._cluster, "workers", {}).values()):
            # A nanny (re)starting its worker has no process, or one without a pid yet.
            pid = getattr(getattr(getattr(nanny, "process", None), "process", None), "pid", None)
            if isinstance(pid, int):
                found[pid] = nanny
        return found

    def _cancel(self, futures: list[Any]) -> None:
        """Cancel Dask futures without waiting for the scheduler (any thread).

        `Client.cancel` waits for the scheduler's answer, which would hold up the timer thread (and so other
        deadlines) while the scheduler is slow or gone; this queues the cancellation on the client's loop.
        """
        client = self._client

        async def cancel() -> None:
            with contextlib.suppress(Exception):
                await client.cancel(futures, asynchronous=True, reason="taskpool-stopped")

        with contextlib.suppress(Exception):
            client.loop.add_callback(cancel)

    # -- Dask's threads -----------------------------------------------------------------------------------
    def _on_started(self, event: Any) -> None:
        """A worker began a task (the client's event-loop thread): report STARTED, arm the deadline."""
        try:
            key, worker, pid = event[1]
        except Exception:
            return
        reports: list[Report] = []
        with self._lock:
            attempt = self._live.get(key)
            if attempt is None:
                return
            attempt.worker, attempt.pid = worker, pid
            timeout = attempt.job.options.timeout
            if timeout is not None and attempt.deadline is None:
                attempt.deadline = time.monotonic() + timeout
                heapq.heappush(self._heap, (attempt.deadline, next(self._seq), key))
                self._wakeup.notify()
            if self._want_started and not attempt.started:
                attempt.started = True
                reports.append((ReportKind.STARTED, attempt.job, worker, pid, None, None))
        self._emit(reports)

    def _on_done(self, key: str, future: Any) -> None:
        """A Dask future finished (Dask's callback thread): fetch the envelope and report the outcome."""
        with self._lock:
            if key not in self._live:
                return  # already reported (timeout, stop, shutdown): nothing to fetch
        status = future.status
        envelope: Envelope | None = None
        error: BaseException | None = None
        if status != "cancelled":
            try:
                # Also waits when the worker that held the result died meanwhile and Dask recomputes it.
                envelope = future.result(timeout=RESULT_TIMEOUT)
            except BaseException as exc:
                error = exc
        attempt = self._settle(key)
        if attempt is None:
            return
        job = attempt.job
        reports: list[Report] = []
        if envelope is not None:
            reports = self._unpack(attempt, envelope)
        elif status == "cancelled" or (error is not None and _is_cancelled(error)):
            if self._client.status != "running":
                error = DaskConnectionError(
                    self._address, "went away while the job was running", job.name
                )
            else:
                error = DaskConnectionError(self._address, "cancelled the job's task", job.name)
            reports.append((ReportKind.FAILED, job, attempt.worker, attempt.pid, None, error))
        elif self._requeue(attempt, error):
            return
        else:
            reports.append(
                (
                    ReportKind.FAILED,
                    job,
                    attempt.worker,
                    attempt.pid,
                    None,
                    self._translate(attempt, error),
                )
            )
        if (
            self._want_started
            and not attempt.started
            and reports
            and reports[-1][0] == ReportKind.SUCCEEDED
        ):
            # The STARTED event may still be on its way (or was never sent): report it before the outcome.
            reports.insert(0, (ReportKind.STARTED, job, reports[-1][2], reports[-1][3], None, None))
        self._emit(reports)

    def _unpack(self, attempt: _Attempt, envelope: Envelope) -> list[Report]:
        status, data, tb, records, output, worker, pid = envelope
        attempt.worker, attempt.pid = worker, pid
        job = attempt.job
        reports: list[Report] = []
        for blob in records:
            with contextlib.suppress(
                Exception
            ):  # a record that does not unpickle is dropped, not the job
                reports.append((ReportKind.LOG, None, worker, pid, pickle.loads(blob), None))
        reports.extend((ReportKind.OUTPUT, None, worker, pid, piece, None) for piece in output)
        if status == _OK:
            try:
                reports.append(
                    (
                        ReportKind.SUCCEEDED,
                        job,
                        worker,
                        pid,
                        loads_checked(data, "result", "parent", job.name),
                        None,
                    )
                )
            except SerializationError as exc:
                reports.append((ReportKind.FAILED, job, worker, pid, None, exc))
        elif status == _ERROR:
            raised: BaseException
            try:
                raised = loads_checked(data, "exception", "parent", job.name)
            except SerializationError as err:
                raised = err
            raised.__cause__ = RemoteTraceback(tb)
            reports.append((ReportKind.FAILED, job, worker, pid, None, raised))
        else:
            error = InitializerError(str(data))
            if not self._broken_reported:
                self._broken_reported = True
                reports.append((ReportKind.BROKEN, None, None, None, None, error))
            reports.append((ReportKind.FAILED, job, worker, pid, None, error))
        return reports

    def _requeue(self, attempt: _Attempt, error: BaseException | None) -> bool:
        """Send an attempt again if its worker died before the attempt began there (Dask's callback thread)."""
        if (
            self._cluster is None
            or type(error).__name__ != "KilledWorker"
            or attempt.requeues >= MAX_REQUEUES
        ):
            return False
        last = getattr(getattr(error, "last_worker", None), "address", None)
        if attempt.worker is not None and attempt.worker == last:
            return False  # it was running there: this job is the one that crashed
        with self._lock:
            if self._closed:
                return True
        self._send(attempt.job, attempt.payload, attempt.requeues + 1)
        return True

    def _translate(self, attempt: _Attempt, error: BaseException | None) -> BaseException:
        """The error for a Dask-level failure of a task (not an exception the job raised)."""
        job = attempt.job
        if error is None:
            return DaskConnectionError(self._address, "lost the job's task", job.name)
        if type(error).__name__ == "KilledWorker":
            last = getattr(error, "last_worker", None)
            pid = getattr(last, "pid", None) or attempt.pid
            where = getattr(last, "address", None) or attempt.worker or "unknown"
            return WorkerCrashedError(
                pid, None, job.name, f"Dask lost its worker {where} while it ran the job ({error})"
            )
        if isinstance(error, (OSError, TimeoutError)) and not isinstance(error, TaskpoolError):
            return WorkerCrashedError(
                attempt.pid,
                None,
                job.name,
                f"the result could not be fetched from Dask worker {attempt.worker}: {type(error).__name__}: {error}",
            )
        return error

    # -- the timer thread ---------------------------------------------------------------------------------
    def _timer_loop(self) -> None:
        """Fail attempts past their deadline, and deliver reports found in `submit` ("taskpool-dask-timer")."""
        while True:
            expired: list[_Attempt] = []
            with self._lock:
                while not self._closed and not self._immediate:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._wakeup.wait(self._heap[0][0] - now if self._heap else None)
                if self._closed:
                    return
                reports, self._immediate = self._immediate, []
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, key = heapq.heappop(self._heap)
                    attempt = self._live.pop(key, None)
                    if attempt is not None:
                        if self._by_job.get(attempt.job.id) == key:
                            del self._by_job[attempt.job.id]
                        expired.append(attempt)
            for attempt in expired:
                timeout = attempt.job.options.timeout or 0.0
                reports.append(
                    (
                        ReportKind.FAILED,
                        attempt.job,
                        attempt.worker,
                        attempt.pid,
                        None,
                        JobTimeoutError(timeout, attempt.job.name),
                    )
                )
            try:
                self._emit(reports)
            except Exception:
                logging.getLogger(__name__).exception("the pool's sink failed")
            if expired:
                self._halt(expired)


def _is_cancelled(error: BaseException) -> bool:
    return isinstance(error, (concurrent.futures.CancelledError, asyncio.CancelledError))


def _bounded(call: Callable[[], object], timeout: float) -> None:
    """Run a blocking Dask call on a daemon thread and wait at most ``timeout`` s for it (shutdown only)."""

    def target() -> None:
        with contextlib.suppress(Exception):
            call()

    thread = threading.Thread(target=target, name="taskpool-dask-close", daemon=True)
    thread.start()
    thread.join(timeout)
