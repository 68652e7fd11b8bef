"""The process backend: one scheduler thread that owns a set of worker processes.

Threads and processes::

    caller threads            scheduler thread (exactly one)                        worker processes
    submit() -> inbox -> wake pipe -> selector.select([wake, results pipes, sentinels,
                                                        writable jobs pipes], timeout=next deadline)
                                      dispatch: batches of jobs per worker     -> jobs pipe -> run in order
                                      read outcomes, logs, prints              <- results pipe
                                      deaths, deadlines, retirement -> respawn
                                      reports -> sink (the pool's event thread)

Only the scheduler thread touches worker state (``_workers``, ``_pending``, ``_deadlines``). Caller threads only
append to ``_inbox`` (a deque: append and popleft are atomic) and write one byte to the wake pipe, and only
when no wake-up is pending already, so a burst of submits costs one syscall. The scheduler never blocks on a
worker: its end of every jobs pipe is non-blocking, and results are reassembled from non-blocking reads.

Why a worker's death costs exactly one job: a worker runs its jobs in the order received and writes the id of
the running job to a shared slot; when its sentinel fires, the job in the slot fails with `WorkerCrashedError`,
and every other job it held is put back at the front of the queue for another worker.

Deadlines: a job with a timeout is sent flagged FLAG_SYNC; the worker reports its start, the scheduler puts
``start + timeout`` on a heap and sleeps in ``select`` no longer than the nearest deadline. A job past its
deadline has its worker killed; the job fails with `JobTimeoutError` and the worker is replaced.

No lock is held while user code runs anywhere in the parent: the scheduler runs none (pickling aside), and
outcomes go to the event thread through the sink.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import logging
import multiprocessing
import os
import pickle
import selectors
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._core.reports import Report, ReportKind, Sink
from ..._errors import (
    InitializerError,
    JobTimeoutError,
    RemoteTraceback,
    TaskpoolError,
    WorkerCrashedError,
)
from ..._runtime.attempt import JobKind, decode_error, decode_value
from ..._runtime.serialize import dumps, dumps_function, dumps_split, has_large_buffer, loads
from .protocol import (
    FLAG_STARTED,
    FLAG_SYNC,
    OP_DEFINE,
    OP_INIT_FAILED,
    OP_LOG,
    OP_OUTPUT,
    OP_QUIT,
    OP_READY,
    OP_RESULT,
    OP_RUN,
    OP_STARTED,
    FrameReader,
    FrameWriter,
    enlarge_pipe,
    wrap,
)
from .worker import worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

    from ..._core.job import Job

__all__ = ["ProcessBackend", "default_start_method"]

# Bound once: these are used per job on the hot path, where an attribute lookup on the enum class shows.
SUCCEEDED, FAILED = ReportKind.SUCCEEDED, ReportKind.FAILED

log = logging.getLogger("taskpool")

# How much work (in seconds of measured job time) may wait in one worker's queue. More: fewer round trips for
# tiny jobs; less: a better spread of long jobs over workers, and less work to redo after a crash.
QUEUED_WORK = 0.005
# Bounds on jobs in flight per worker; the first jobs of a pool go out two per worker until durations are known.
MIN_INFLIGHT, START_INFLIGHT, MAX_INFLIGHT = 1, 2, 1024
# Jobs shorter than this keep a second job queued behind them in the worker, so that the worker does not sit
# out the round trip (its result to the parent, the next job back) between two jobs: for a 10 ms map chunk
# that round trip is a tenth of the time. Longer jobs go one at a time: the round trip is then noise, and a
# job queued behind a long one could wait while another worker idles.
PIPELINE_BELOW = 0.05
# Workers that die before they report ready, in a row, before the pool gives up instead of respawning forever.
STARTUP_FAILURES = 3
# How long a graceful shutdown waits for workers to exit before it kills them.
QUIT_GRACE = 5.0

_WAKE, _RESULTS, _SENTINEL, _JOBS = 0, 1, 2, 3
_NO_ARGUMENTS = pickle.dumps(((), {}), protocol=5)
# map chunks at most this long are scanned for large buffers to send out of band; long chunks of small items
# (the common case) are not scanned at all.
_SCAN_CHUNK = 64


def default_start_method() -> str:
    """forkserver where the platform has it (fork after threads start is unsafe), spawn elsewhere."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class _Worker:
    """The scheduler's view of one worker process (scheduler thread only)."""

    __slots__ = (
        "assigned",
        "defined",
        "discard",
        "inflight",
        "kill_reason",
        "pid",
        "process",
        "quitting",
        "reader",
        "ready",
        "results",
        "slot",
        "wid",
        "writer",
        "writer_conn",
    )

    def __init__(
        self,
        wid: int,
        process: Any,
        reader: FrameReader,
        writer: FrameWriter,
        slot: Any,
        results: Connection,
        writer_conn: Connection,
    ) -> None:
        self.wid = wid
        self.process = process
        self.pid: int | None = process.pid
        self.reader = reader
        self.writer = writer
        self.slot = slot
        self.results = results
        self.writer_conn = writer_conn
        self.inflight: dict[int, Job] = {}
        self.defined: set[int] = set()
        self.discard: set[int] = set()
        self.assigned = 0
        self.ready = False
        self.quitting = False
        # (job id, its error) when the scheduler killed the worker on purpose; error None: stopped on request.
        self.kill_reason: tuple[int, BaseException | None] | None = None


class ProcessBackend:
    """Runs jobs in worker processes; see the module docstring for the threading model."""

    name = "process"
    supports_timeout = True
    supports_stop = True
    shared_state_unavailable: str | None = None

    def __init__(
        self,
        workers: int,
        *,
        start_method: str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        capture_output: bool = True,
    ) -> None:
        self.workers = workers
        self.start_method: str | None = start_method or default_start_method()
        self._ctx: BaseContext = multiprocessing.get_context(start_method or default_start_method())
        self._initializer = initializer
        self._initargs = initargs
        self._max_tasks = max_tasks_per_worker
        self._capture_output = capture_output
        self._sink: Sink = lambda reports: None
        # Shared with caller threads (see the module docstring).
        self._inbox: deque[Any] = deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_pending = False
        self._want_started = False
        self._fn_lock = threading.Lock()
        self._fn_keys: dict[Any, int] = {}
        self._fn_data: dict[int, bytes] = {}
        self._fn_counter = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._shutdown_done = threading.Event()
        # Scheduler thread only.
        self._selector = selectors.DefaultSelector()
        self._pending: deque[Job] = deque()
        self._workers: dict[int, _Worker] = {}
        self._wids = itertools.count(1)
        self._deadlines: list[tuple[float, int, int, int]] = []
        self._ewma: float | None = None
        self._limit = START_INFLIGHT
        self._startup_failures = 0
        self._broken: BaseException | None = None
        self._quit: bool | None = None  # None: running; True: drain and quit; False: kill now
        self._quit_deadline = 0.0

    # -- caller threads --------------------------------------------------------------------------------
    def start(self, sink: Sink) -> None:
        """Start the scheduler thread (workers start on demand). Runs in the pool's constructor."""
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name="taskpool-scheduler", daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"\0")

    def _new_function_key(self, fn: Callable[..., Any], name: str) -> int:
        data = dumps_function(fn, name)
        with self._fn_lock:
            key = next(self._fn_counter)
            self._fn_data[key] = data
            with contextlib.suppress(
                TypeError
            ):  # an unhashable callable: pickled again for every job
                self._fn_keys[fn] = key
        return key

    def submit(self, job: Job) -> None:
        """Queue one attempt of ``job`` (any thread). Pickles it here, in the caller's thread.

        This is the hot path of every submit: keep it lean.

        Raises:
            SerializationError: the function or the arguments do not pickle.
        """
        if job.payload is None:
            fn = job.fn
            try:
                key = self._fn_keys.get(fn)
            except TypeError:
                key = None
            if key is None:
                key = self._new_function_key(fn, job.name)
            args = job.args
            if job.kind != JobKind.CALL:
                chunk = args[0]
                if len(chunk) <= _SCAN_CHUNK and has_large_buffer(chunk):
                    job.payload = (key, dumps_split(chunk, "arguments", "parent", job.name))
                else:
                    job.payload = (key, wrap(dumps(chunk, "arguments", "parent", job.name)))
            elif args or job.kwargs:
                if has_large_buffer(args, job.kwargs):
                    job.payload = (
                        key,
                        dumps_split((args, job.kwargs), "arguments", "parent", job.name),
                    )
                else:
                    job.payload = (
                        key,
                        wrap(dumps((args, job.kwargs), "arguments", "parent", job.name)),
                    )
            else:
                job.payload = (key, _NO_ARGUMENTS)
        self._inbox.append(job)
        if not self._wake_pending:
            self._wake()

    def stop(self, job: Job) -> bool:
        """Ask the scheduler to stop ``job`` (any thread): it kills the worker if the job is running."""
        self._inbox.append(("stop", job))
        self._wake()
        return True

    def want_started(self, enabled: bool) -> None:
        self._want_started = enabled

    def shutdown(self, wait: bool) -> None:
        """Stop the workers and the scheduler thread (caller thread; bounded in time)."""
        self._inbox.append(("quit", wait))
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(QUIT_GRACE + 5.0)
        self._shutdown_done.wait(QUIT_GRACE + 5.0)

    # -- scheduler thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        sel = self._selector
        sel.register(self._wake_r, selectors.EVENT_READ, (_WAKE, None))
        try:
            while True:
                reports: list[Report] = []
                for key, _mask in sel.select(self._select_timeout()):
                    tag: int = key.data[0]
                    if tag == _WAKE:
                        # Drain first, then clear the flag: a submit that sees the flag still set has
                        # appended its job before the clear, so _take_inbox below finds it.
                        with contextlib.suppress(BlockingIOError, OSError):
                            while os.read(self._wake_r, 4096):
                                pass
                        self._wake_pending = False
                        continue
                    w: _Worker = key.data[1]
                    if self._workers.get(w.wid) is not w:
                        # Its sentinel came first in this round: _on_exit read what was left and closed
                        # its pipes, so this key's fd is closed (or already another worker's).
                        continue
                    if tag == _RESULTS:
                        self._read(w, reports)
                    elif tag == _SENTINEL:
                        self._on_exit(w, reports)
                    else:
                        self._flush(w)
                self._take_inbox(reports)
                if self._deadlines:
                    self._check_deadlines()
                if self._quit is None and self._broken is None:
                    self._dispatch(reports)
                if reports:
                    self._sink(reports)
                if self._quit is not None and self._quitting_done():
                    break
        except (
            BaseException
        ) as exc:  # a bug here must reach the futures, not vanish with this thread
            log.critical("taskpool scheduler thread failed", exc_info=True)
            with contextlib.suppress(BaseException):
                self._sink(
                    [
                        (
                            ReportKind.BROKEN,
                            None,
                            None,
                            None,
                            None,
                            TaskpoolError(f"the pool's scheduler thread failed: {exc!r}"),
                        )
                    ]
                )
            self._kill_all()
        finally:
            self._reap_all()
            with contextlib.suppress(OSError):
                os.close(self._wake_r)
            with contextlib.suppress(OSError):
                os.close(self._wake_w)
            self._selector.close()
            self._shutdown_done.set()

    def _select_timeout(self) -> float | None:
        timeouts = []
        if self._deadlines:
            timeouts.append(self._deadlines[0][0] - time.monotonic())
        if self._quit is not None:
            timeouts.append(self._quit_deadline - time.monotonic())
        return max(0.0, min(timeouts)) if timeouts else None

    def _take_inbox(self, reports: list[Report]) -> None:
        inbox, pending = self._inbox, self._pending
        while inbox:
            item = inbox.popleft()
            if type(item) is tuple:
                if item[0] == "stop":
                    self._stop_job(item[1], reports)
                else:
                    self._begin_quit(item[1], reports)
            elif self._broken is not None:
                reports.append((ReportKind.FAILED, item, None, None, None, self._broken))
            else:
                pending.append(item)

    def _spawn(self) -> _Worker:
        wid = next(self._wids)
        jobs_r, jobs_w = self._ctx.Pipe(duplex=False)
        results_r, results_w = self._ctx.Pipe(duplex=False)
        enlarge_pipe(jobs_w.fileno())
        enlarge_pipe(results_w.fileno())
        slot = self._ctx.RawValue(ctypes.c_longlong, 0)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(
                jobs_r,
                results_w,
                slot,
                self._initializer,
                self._initargs,
                logging.getLogger().getEffectiveLevel(),
                self._capture_output,
            ),
            name=f"taskpool-worker-{wid}",
            daemon=True,
        )
        process.start()
        jobs_r.close()
        results_w.close()
        w = _Worker(
            wid,
            process,
            FrameReader(results_r.fileno()),
            FrameWriter(jobs_w.fileno()),
            slot,
            results_r,
            jobs_w,
        )
        self._workers[wid] = w
        self._selector.register(w.reader.fd, selectors.EVENT_READ, (_RESULTS, w))
        self._selector.register(process.sentinel, selectors.EVENT_READ, (_SENTINEL, w))
        return w

    def _dispatch(self, reports: list[Report]) -> None:
        pending = self._pending
        if not pending:
            return
        open_workers = [
            w for w in self._workers.values() if not w.quitting and w.kill_reason is None
        ]
        if len(open_workers) < self.workers:
            # Start a worker for each job that would otherwise wait behind another: a pool that gets one
            # job starts one process, not all of them, and two jobs never share a worker while one is missing.
            idle = sum(1 for w in open_workers if not w.inflight)
            for _ in range(min(self.workers - len(open_workers), len(pending) - idle)):
                try:
                    open_workers.append(self._spawn())
                except (
                    Exception
                ) as exc:  # the initializer or its arguments do not pickle, or no fork
                    self._break(
                        InitializerError(
                            f"could not start a worker process: {type(exc).__name__}: {exc}"
                        ),
                        reports,
                    )
                    return
        open_workers.sort(key=lambda w: len(w.inflight))
        flags = FLAG_STARTED if self._want_started else 0
        for i, w in enumerate(open_workers):
            if not pending:
                break
            room = self._room(w)
            if room <= 0:
                continue
            # An even share of what is pending, so that a short queue spreads over the idle workers.
            share = min(room, -(-len(pending) // (len(open_workers) - i)))
            messages: list[Any] = []
            inflight = w.inflight
            for _ in range(share):
                if not pending:
                    break
                job = pending.popleft()
                # A job put back after its worker died is RUNNING already: asking again would raise.
                if (
                    job.attempt == 1
                    and not job.future.running()
                    and not job.future.set_running_or_notify_cancel()
                ):
                    reports.append((ReportKind.SKIPPED, job, None, None, None, None))
                    continue
                key, payload = job.payload
                if key not in w.defined:
                    w.defined.add(key)
                    messages.append((OP_DEFINE, key, self._fn_data[key]))
                job_flags = flags | FLAG_SYNC if job.options.timeout is not None else flags
                messages.append((OP_RUN, job.id, key, job.kind, payload, job_flags, job.name))
                inflight[job.id] = job
                w.assigned += 1
            if self._max_tasks is not None and w.assigned >= self._max_tasks:
                # Retire the worker after the jobs it has: the pool replaces it when it exits.
                messages.append((OP_QUIT,))
                w.quitting = True
            if messages:
                w.writer.queue(messages)
                self._flush(w)

    def _room(self, w: _Worker) -> int:
        room = self._limit - len(w.inflight)
        if self._max_tasks is not None:
            room = min(room, self._max_tasks - w.assigned)
        return room

    def _flush(self, w: _Worker) -> None:
        try:
            done = w.writer.flush()
        except OSError:
            done = True  # the worker is gone; its sentinel will say so
            w.writer.pending.clear()
        key = (
            self._selector.get_key(w.writer.fd) if w.writer.fd in self._selector.get_map() else None
        )
        if not done and key is None:
            self._selector.register(w.writer.fd, selectors.EVENT_WRITE, (_JOBS, w))
        elif done and key is not None:
            self._selector.unregister(w.writer.fd)

    def _read(self, w: _Worker, reports: list[Report]) -> None:
        try:
            frames = w.reader.read()
        except EOFError:
            self._selector.unregister(w.reader.fd)
            frames = []
        for frame in frames:
            self._handle(w, frame, reports)

    def _handle(self, w: _Worker, frame: list[Any], reports: list[Report]) -> None:
        inflight, discard, wid, pid = w.inflight, w.discard, w.wid, w.pid
        ewma = self._ewma
        for msg in frame:
            op = msg[0]
            if op == OP_RESULT:
                _, job_id, ok, payload, tb, duration = msg
                job = inflight.pop(job_id, None)
                ewma = duration if ewma is None else 0.8 * ewma + 0.2 * duration
                if job is None or job_id in discard:
                    discard.discard(job_id)
                    continue
                if ok:
                    ok, value = decode_value(payload, job.name)
                    if ok:
                        reports.append((SUCCEEDED, job, wid, pid, value, None))
                    else:
                        reports.append((FAILED, job, wid, pid, None, value))
                    continue
                reports.append((FAILED, job, wid, pid, None, decode_error(payload, tb, job.name)))
            elif op == OP_STARTED:
                job = inflight.get(msg[1])
                if job is not None:
                    if job.options.timeout is not None:
                        heapq.heappush(
                            self._deadlines,
                            (time.monotonic() + job.options.timeout, wid, job.id, job.attempt),
                        )
                    if self._want_started:
                        reports.append((ReportKind.STARTED, job, wid, pid, None, None))
            elif op == OP_LOG:
                with contextlib.suppress(Exception):
                    reports.append((ReportKind.LOG, None, wid, pid, loads(msg[2]), None))
            elif op == OP_OUTPUT:
                reports.append((ReportKind.OUTPUT, None, wid, pid, (msg[1], msg[2]), None))
            elif op == OP_READY:
                w.ready = True
                self._startup_failures = 0
                reports.append((ReportKind.WORKER_UP, None, wid, pid, None, None))
            elif op == OP_INIT_FAILED:
                self._break(
                    InitializerError(msg[1].strip().split("\n", 1)[0]), reports, detail=msg[1]
                )
        if ewma is not None and ewma is not self._ewma:
            self._ewma = ewma
            floor = 2 if ewma < PIPELINE_BELOW else MIN_INFLIGHT
            self._limit = max(floor, min(MAX_INFLIGHT, int(QUEUED_WORK / max(ewma, 1e-7))))

    def _break(self, error: BaseException, reports: list[Report], detail: str = "") -> None:
        """The pool cannot run jobs (its initializer fails): fail everything, start no more workers."""
        if self._broken is not None:
            return
        if detail:
            error.__cause__ = RemoteTraceback(detail)
        self._broken = error
        reports.append((ReportKind.BROKEN, None, None, None, None, error))
        for w in self._workers.values():
            w.inflight.clear()
        self._pending.clear()
        self._kill_all()

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, wid, job_id, attempt = heapq.heappop(deadlines)
            w = self._workers.get(wid)
            if w is None or w.kill_reason is not None:
                continue
            job = w.inflight.get(job_id)
            if job is None or job.attempt != attempt or job_id in w.discard:
                continue
            timeout = job.options.timeout
            w.kill_reason = (
                job_id,
                JobTimeoutError(timeout if timeout is not None else 0.0, job.name),
            )
            self._kill(w)

    def _stop_job(self, job: Job, reports: list[Report]) -> None:
        for w in self._workers.values():
            if job.id in w.inflight and job.id not in w.discard and w.inflight[job.id] is job:
                if w.slot.value == job.id and w.kill_reason is None:
                    w.kill_reason = (job.id, None)
                    self._kill(w)
                else:
                    # Queued in the worker but not started: it may still run there; its outcome is dropped.
                    w.discard.add(job.id)
                    reports.append((ReportKind.STOPPED, job, w.wid, w.pid, None, None))
                return
        if job in self._pending:
            self._pending.remove(job)
        # Not found anywhere, the job is between two attempts (the pool waits to retry it): it is stopped
        # all the same, and the pool drops the retry when it finds the future done.
        reports.append((ReportKind.STOPPED, job, None, None, None, None))

    def _kill(self, w: _Worker) -> None:
        with contextlib.suppress(Exception):
            w.process.kill()

    def _on_exit(self, w: _Worker, reports: list[Report]) -> None:
        """A worker's process ended: settle every job it held, then forget it (scheduler thread)."""
        sel = self._selector
        if w.reader.fd in sel.get_map():
            # Outcomes it wrote before it died still count.
            self._read(w, reports)
            if w.reader.fd in sel.get_map():
                sel.unregister(w.reader.fd)
        sel.unregister(w.process.sentinel)
        if w.writer.fd in sel.get_map():
            sel.unregister(w.writer.fd)
        w.process.join(1.0)
        exitcode = w.process.exitcode
        running = w.slot.value
        reason = w.kill_reason
        requeue: list[Job] = []
        for job_id, job in w.inflight.items():
            if job_id in w.discard:
                continue
            if reason is not None and reason[0] == job_id:
                error = reason[1]
                if error is None:
                    reports.append((ReportKind.STOPPED, job, w.wid, w.pid, None, None))
                else:
                    reports.append((ReportKind.FAILED, job, w.wid, w.pid, None, error))
            elif job_id == running and self._quit is not False:
                reports.append(
                    (
                        ReportKind.FAILED,
                        job,
                        w.wid,
                        w.pid,
                        None,
                        WorkerCrashedError(w.pid, exitcode, job.name),
                    )
                )
            else:
                requeue.append(job)
        if self._quit is None and self._broken is None:
            self._pending.extendleft(reversed(requeue))
        elif self._quit is True and requeue:
            # Draining: jobs a dying worker held must still run, so the drain goes on with a new worker.
            self._pending.extendleft(reversed(requeue))
        del self._workers[w.wid]
        self._close_pipes(w)
        reports.append((ReportKind.WORKER_DOWN, None, w.wid, w.pid, exitcode, None))
        if not w.ready and reason is None and self._quit is None:
            self._startup_failures += 1
            if self._startup_failures >= STARTUP_FAILURES and self._broken is None:
                self._break(
                    InitializerError(
                        f"{STARTUP_FAILURES} worker processes in a row exited with code {exitcode} before they "
                        "were ready"
                    ),
                    reports,
                )
        if self._quit is True and self._pending:
            self._dispatch_during_drain(reports)

    def _dispatch_during_drain(self, reports: list[Report]) -> None:
        quit_flag = self._quit
        self._quit = None
        try:
            self._dispatch(reports)
        finally:
            self._quit = quit_flag
        for w in self._workers.values():
            if not w.quitting:
                w.writer.queue([(OP_QUIT,)])
                w.quitting = True
                self._flush(w)

    def _close_pipes(self, w: _Worker) -> None:
        for conn in (w.results, w.writer_conn):
            with contextlib.suppress(OSError):
                conn.close()

    def _begin_quit(self, wait: bool, reports: list[Report]) -> None:
        if self._quit is False or (self._quit is True and wait):
            return
        self._quit = wait
        self._quit_deadline = time.monotonic() + (QUIT_GRACE if wait else 1.0)
        if wait:
            for w in self._workers.values():
                if not w.quitting:
                    w.writer.queue([(OP_QUIT,)])
                    w.quitting = True
                    self._flush(w)
        else:
            self._pending.clear()
            for w in self._workers.values():
                w.inflight.clear()
                with contextlib.suppress(Exception):
                    w.process.terminate()

    def _quitting_done(self) -> bool:
        if not self._workers:
            return True
        if time.monotonic() >= self._quit_deadline:
            self._kill_all()
            return True
        return False

    def _kill_all(self) -> None:
        for w in self._workers.values():
            self._kill(w)

    def _reap_all(self) -> None:
        for w in list(self._workers.values()):
            w.process.join(2.0)
            if w.process.exitcode is None:
                self._kill(w)
                w.process.join(2.0)
            self._close_pipes(w)
        self._workers.clear()


if (
    sys.platform == "win32"
):  # pragma: no cover - the pipe protocol relies on POSIX non-blocking pipes
    raise ImportError("taskpool's process backend needs a POSIX system")
