"""The worker processes of the process backend, as the scheduler sees them: start, kill, reap, settle.

Runs in the scheduler thread only, like everything that touches worker state (see `scheduler`). A `Worker` is
the scheduler's view of one worker process: its pipes, the jobs it holds, and why it was killed, if it was.
`Workers` is the set of them: it starts a worker (its pipes registered with the scheduler's selector), kills
and reaps them, and when one has ended settles the jobs it held.

Why a worker's death costs exactly one job: a worker runs its jobs in the order received and writes the id of
the running job to a shared slot (0 between jobs), and the outcome of each job it finishes to its results pipe
or to its outcome ring (`ring`) before it clears the slot. When it ends (its pidfd or its sentinel, see
`lineage`), the scheduler takes the outcomes from the pipe, then from the ring; the job in the slot fails with
`WorkerCrashedError`, and every other job it still held never started: it is handed back to be put at the
front of the queue for another worker. A job killed on purpose (timeout, stop) is known by the `KillReason`
recorded before the kill.

A worker leads its own process group, and whatever its jobs started dies with it: a kill is sent to the whole
group, and what is left of the group when a worker has ended, however it ended, is killed before it is reaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import selectors
import signal
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..._core.reports import Report, ReportKind
from ..._errors import JobTimeoutError, WorkerCrashedError
from .functions import FUNCTION_CACHE_SIZE, Pickled
from .lineage import lifeline, reap, signal_worker, watch_death
from .protocol import (
    FLAG_SYNC,
    QUIT,
    FrameReader,
    FrameWriter,
    define_message,
    enlarge_pipe,
    forget_message,
    run_message,
)
from .ring import new_ring
from .worker import worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

    from ..._core.job import Job

__all__ = ["JOBS", "RESULTS", "SENTINEL", "KillReason", "Worker", "Workers"]

# What a worker's selector key is about (the first item of its data; the second is the `Worker`): its results
# pipe is readable, its process ended, its jobs pipe takes more of the frames queued for it.
RESULTS, SENTINEL, JOBS = 1, 2, 3
# Bound once: used per job.
SKIPPED = ReportKind.SKIPPED


class KillReason(NamedTuple):
    """Why the scheduler killed a worker on purpose: the job it was running, and that job's outcome."""

    job_id: int
    #: The job's error (`JobTimeoutError`), or None: the job was stopped on request.
    error: BaseException | None


class Worker:
    """The scheduler's view of one worker process (scheduler thread only)."""

    __slots__ = (
        "assigned",
        "death_fd",
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
        "ring",
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
        ring: Any,
        results: Connection,
        writer_conn: Connection,
        death_fd: int,
    ) -> None:
        self.wid = wid
        self.process = process
        self.pid: int | None = process.pid
        self.reader = reader
        self.writer = writer
        #: The shared slot where the worker writes the id of the job it runs (0 between jobs).
        self.slot = slot
        #: The shared outcome ring where it copies outcomes not yet written to its results pipe.
        self.ring = ring
        self.results = results
        self.writer_conn = writer_conn
        #: Readable once the process has ended: a pidfd, or the process's sentinel (see `lineage.watch_death`).
        self.death_fd = death_fd
        #: The jobs sent to it whose outcome has not come back, by job id, in the order sent.
        self.inflight: dict[int, Job] = {}
        #: The keys of the functions it holds, least recently used first (at most FUNCTION_CACHE_SIZE).
        self.defined: OrderedDict[int, None] = OrderedDict()
        #: Jobs stopped while queued in it: their outcomes are dropped.
        self.discard: set[int] = set()
        #: Jobs sent to it in all (for `max_tasks_per_worker`).
        self.assigned = 0
        self.ready = False
        #: It was told to quit after the jobs it has: it takes no more.
        self.quitting = False
        #: Set when the scheduler kills it on purpose.
        self.kill_reason: KillReason | None = None

    def kill(self) -> None:
        """SIGKILL the worker and every process its jobs started (its process group)."""
        signal_worker(self.process, signal.SIGKILL)

    def take_jobs(
        self,
        pending: deque[Job],
        count: int,
        flags: int,
        max_tasks: int | None,
        reports: list[Report],
    ) -> list[Any]:
        """Take up to ``count`` jobs off ``pending`` for this worker: the messages that send them.

        Sends a function it has not been sent yet first, and retires the worker (a quit after the jobs) once
        it has been given ``max_tasks`` jobs. A job whose future was cancelled is reported skipped instead.
        """
        messages: list[Any] = []
        inflight, defined = self.inflight, self.defined
        sent = 0
        # A cancelled job takes no share of the worker's room: were it counted, a round that met only
        # cancelled jobs would send nothing, and nothing would wake the scheduler for the jobs left behind.
        while sent < count and pending:
            job = pending.popleft()
            # A job put back after its worker died is RUNNING already: asking again would raise.
            future = job.future
            if (
                job.attempt == 1
                and not future.running()
                and not future.set_running_or_notify_cancel()
            ):
                reports.append((SKIPPED, job, None, None, None, None))
                continue
            function, payload = job.payload
            key = function[0]
            if key in defined:
                defined.move_to_end(key)
            else:
                self._define(function, messages)
            job_flags = flags | FLAG_SYNC if job.options.timeout is not None else flags
            messages.append(run_message(job.id, key, job.kind, payload, job_flags, job.name))
            inflight[job.id] = job
            sent += 1
        self.assigned += sent
        if max_tasks is not None and self.assigned >= max_tasks:
            # Retire the worker after the jobs it has: the pool replaces it when it exits.
            messages.append(QUIT)
            self.quitting = True
        return messages

    def _define(self, function: Pickled, messages: list[Any]) -> None:
        """Send ``function``; past FUNCTION_CACHE_SIZE, the worker forgets its least recently used one."""
        defined = self.defined
        defined[function.key] = None
        messages.append(define_message(function.key, function.data))
        if len(defined) > FUNCTION_CACHE_SIZE:
            oldest, _ = defined.popitem(last=False)
            messages.append(forget_message((oldest,)))

    def close_pipes(self) -> None:
        for conn in (self.results, self.writer_conn):
            with contextlib.suppress(OSError):
                conn.close()
        if self.death_fd != self.process.sentinel:  # a pidfd of ours
            with contextlib.suppress(OSError):
                os.close(self.death_fd)


class Workers:
    """The worker processes of one backend, by worker id (scheduler thread only)."""

    def __init__(
        self,
        ctx: BaseContext,
        selector: selectors.BaseSelector,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        capture_output: bool,
    ) -> None:
        self._ctx = ctx
        self._selector = selector
        self._initializer = initializer
        self._initargs = initargs
        self._capture_output = capture_output
        self._start_method = ctx.get_start_method()
        self._wids = itertools.count(1)
        #: The live workers by id; the scheduler reads it, only this class adds and removes.
        self.by_id: dict[int, Worker] = {}

    def __iter__(self) -> Iterator[Worker]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def spawn(self) -> Worker:
        """Start a worker process and watch its results pipe and its sentinel.

        Raises:
            Exception: the process could not start (the initializer or its arguments do not pickle, no fork).
        """
        ctx = self._ctx
        wid = next(self._wids)
        jobs_r, jobs_w = ctx.Pipe(duplex=False)
        try:
            results_r, results_w = ctx.Pipe(duplex=False)
        except BaseException:
            _close(
                jobs_r, jobs_w
            )  # the failure may pass (no file descriptors for now): leak nothing
            raise
        enlarge_pipe(jobs_w.fileno())
        enlarge_pipe(results_w.fileno())
        slot = ctx.RawValue(ctypes.c_longlong, 0)
        ring = new_ring(ctx)
        process = ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(
                jobs_r,
                results_w,
                slot,
                ring,
                self._initializer,
                self._initargs,
                logging.getLogger().getEffectiveLevel(),
                self._capture_output,
                lifeline(),
            ),
            name=f"taskpool-worker-{wid}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            _close(jobs_r, jobs_w, results_r, results_w)
            raise
        death_fd = watch_death(process, self._start_method)
        jobs_r.close()
        results_w.close()
        w = Worker(
            wid,
            process,
            FrameReader(results_r.fileno()),
            FrameWriter(jobs_w.fileno()),
            slot,
            ring,
            results_r,
            jobs_w,
            death_fd,
        )
        self.by_id[wid] = w
        self._selector.register(w.reader.fd, selectors.EVENT_READ, (RESULTS, w))
        self._selector.register(death_fd, selectors.EVENT_READ, (SENTINEL, w))
        return w

    def send(self, w: Worker, messages: list[Any]) -> None:
        """Queue a batch of messages for ``w`` and write what its jobs pipe takes now."""
        w.writer.queue(messages)
        self.flush(w)

    def flush(self, w: Worker) -> None:
        """Write what ``w``'s jobs pipe takes now; watch the pipe for room while frames are left."""
        try:
            done = w.writer.flush()
        except OSError:
            done = True  # the worker is gone; its sentinel will say so
            w.writer.pending.clear()
        sel = self._selector
        registered = w.writer.fd in sel.get_map()
        if not done and not registered:
            sel.register(w.writer.fd, selectors.EVENT_WRITE, (JOBS, w))
        elif done and registered:
            sel.unregister(w.writer.fd)

    def forget(self, keys: set[int]) -> None:
        """Tell every worker that holds one of the functions ``keys`` to drop it (the parent dropped them)."""
        for w in self.by_id.values():
            held = tuple(k for k in keys if k in w.defined)
            if held and not w.quitting:
                for key in held:
                    del w.defined[key]
                self.send(w, [forget_message(held)])

    def retire(self, w: Worker) -> None:
        """Tell ``w`` to exit after the jobs it has; it takes no more."""
        if not w.quitting:
            w.quitting = True
            self.send(w, [QUIT])

    def abandon_all(self) -> None:
        """Forget every job the workers hold and kill them (the pool is broken)."""
        for w in self.by_id.values():
            w.inflight.clear()
            w.kill()

    def kill_all(self) -> None:
        for w in self.by_id.values():
            w.kill()

    def terminate_all(self) -> None:
        """Forget every job the workers hold and ask them, and what their jobs started, to end now (SIGTERM)."""
        for w in self.by_id.values():
            w.inflight.clear()
            signal_worker(w.process, signal.SIGTERM)

    def stop(self, job: Job, reports: list[Report]) -> bool:
        """Stop ``job`` if a worker holds it. Returns whether one does.

        A worker that runs it now is killed (the job is settled when it is reaped); one that holds it queued
        may still run it, but its outcome is dropped, and the job is reported stopped now.
        """
        for w in self.by_id.values():
            if w.inflight.get(job.id) is job and job.id not in w.discard:
                if w.slot.value == job.id and w.kill_reason is None:
                    w.kill_reason = KillReason(job.id, None)
                    w.kill()
                else:
                    w.discard.add(job.id)
                    reports.append((ReportKind.STOPPED, job, w.wid, w.pid, None, None))
                return True
        return False

    def expire(self, wid: int, job_id: int, attempt: int) -> None:
        """The deadline of ``attempt`` of job ``job_id`` on worker ``wid`` passed: kill the worker if it still
        holds that attempt (the job fails with `JobTimeoutError` when the worker is settled)."""
        w = self.by_id.get(wid)
        if w is None or w.kill_reason is not None:
            return
        job = w.inflight.get(job_id)
        if job is None or job.attempt != attempt or job_id in w.discard:
            return
        timeout = job.options.timeout
        error = JobTimeoutError(timeout if timeout is not None else 0.0, job.name)
        w.kill_reason = KillReason(job_id, error)
        w.kill()

    def stop_watching(self, w: Worker) -> None:
        """Unregister ``w``'s results pipe, if it still is (its end of file is read)."""
        if w.reader.fd in self._selector.get_map():
            self._selector.unregister(w.reader.fd)

    def settle(
        self, w: Worker, reports: list[Report], crashes_count: bool
    ) -> tuple[int | None, list[Job]]:
        """``w``'s process ended: report the jobs it held, forget it. Returns its exit code and the jobs to run again.

        Call it after the outcomes ``w`` left (in its pipe, then its ring) were taken: those jobs finished. The
        job it was killed for ends as its `KillReason` says; with ``crashes_count``, the job it was running
        fails with `WorkerCrashedError`; the others it held never started.
        """
        sel = self._selector
        self.stop_watching(w)
        sel.unregister(w.death_fd)
        if w.writer.fd in sel.get_map():
            sel.unregister(w.writer.fd)
        exitcode = reap(w.process)
        running = w.slot.value
        reason = w.kill_reason
        wid, pid = w.wid, w.pid
        requeue: list[Job] = []
        for job_id, job in w.inflight.items():
            if job_id in w.discard:
                continue
            if reason is not None and reason.job_id == job_id:
                if reason.error is None:
                    reports.append((ReportKind.STOPPED, job, wid, pid, None, None))
                else:
                    reports.append((ReportKind.FAILED, job, wid, pid, None, reason.error))
            elif job_id == running and crashes_count:
                error = WorkerCrashedError(pid, exitcode, job.name)
                reports.append((ReportKind.FAILED, job, wid, pid, None, error))
            else:
                requeue.append(job)
        del self.by_id[wid]
        w.close_pipes()
        reports.append((ReportKind.WORKER_DOWN, None, wid, pid, exitcode, None))
        return exitcode, requeue

    def reap_all(self) -> None:
        """Wait for every worker to end (killing those that do not), and close their pipes. Bounded in time."""
        for w in list(self.by_id.values()):
            w.process.join(2.0)
            if w.process.exitcode is None:
                w.kill()
                w.process.join(2.0)
            w.close_pipes()
        self.by_id.clear()


def _close(*conns: Connection) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.close()
