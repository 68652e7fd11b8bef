"""The worker processes of the process backend, as the scheduler sees them: start, kill, reap, settle.

Runs in the scheduler thread only, like everything that touches worker state (see `scheduler`). `Workers` is
the set of `Worker`s (see `handle`): it starts a worker (its pipes registered with the scheduler's selector),
kills and reaps them, and when one has ended settles the jobs it held.

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
import selectors
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..._core.reports import Report, ReportKind, WorkerExit
from ..._errors import JobTimeoutError, WorkerCrashedError
from .capture import Capture
from .handle import CAPTURE, JOBS, RESULTS, SENTINEL, KillReason, Worker
from .lender import SegmentPool
from .lineage import lifeline, reap, signal_worker, watch_death
from .memory import format_size, oom_events_paths, oom_killed, oom_kills
from .protocol import (
    QUIT,
    FrameReader,
    FrameWriter,
    enlarge_pipe,
    forget_message,
    release_message,
)
from .ring import new_ring
from .segments import Link, sending, socket_pair
from .stacks import where_stuck
from .templates import TemplateProcess, acquire
from .worker import worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

    from ..._core.job import Job

__all__ = ["Workers"]


class Workers:
    """The worker processes of one backend, by worker id (scheduler thread only)."""

    def __init__(
        self,
        ctx: BaseContext,
        selector: selectors.BaseSelector,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        capture_output: bool,
        preload: tuple[str, ...] = (),
        thread_limit: int | None = None,
        template: bool = False,
        memory_limit: int | None = None,
        segments: SegmentPool | None = None,
    ) -> None:
        self._ctx = ctx
        #: The segments large arguments travel in, lent to every worker; None: they go through the pipes.
        self.segments = segments
        self._selector = selector
        self._initializer = initializer
        self._initargs = initargs
        self._capture_output = capture_output
        self._preload = preload
        self._thread_limit = thread_limit
        #: Fork workers from a template (`templates`) rather than through the context's start method.
        self._template = template
        #: ``max_memory_per_worker`` in bytes, or None.
        self.memory_limit = memory_limit
        # The files that count the OOM kills of the workers' cgroup, found once (none off Linux).
        self._oom_paths = oom_events_paths()
        self._start_method = ctx.get_start_method()
        self._wids = itertools.count(1)
        # Shared by every worker of the backend, which reads it before each job: jobs up to this id that have
        # not begun are skipped (`withdraw`). Written by a caller thread; a plain shared integer suffices,
        # since a worker that reads it a moment late only runs a job that it had been handed anyway.
        self._withdrawn = ctx.RawValue(ctypes.c_longlong, 0)
        #: The live workers by id; the scheduler reads it, only this class adds and removes.
        self.by_id: dict[int, Worker] = {}

    def __iter__(self) -> Iterator[Worker]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def withdraw(self, upto: int) -> None:
        """Make every worker skip the jobs up to id ``upto`` it was handed and has not begun (any thread).

        Each skipped job comes back as a skipped message, reported SKIPPED: its future is cancelled. A job that
        a worker has begun runs on; so do retries (FLAG_BEGUN), which began before.
        """
        if upto > self._withdrawn.value:
            self._withdrawn.value = upto

    def spawn(self) -> Worker:
        """Start a worker process and watch its results pipe and its sentinel.

        Raises:
            Exception: the process could not start (the initializer or its arguments do not pickle, no fork).
        """
        ctx = self._ctx
        wid = next(self._wids)
        pipes: list[Connection] = []
        try:
            # jobs, results, stacks, and with capture_output the worker's stdout and stderr: (read end,
            # write end) each
            for _ in range(5 if self._capture_output else 3):
                pipes.extend(ctx.Pipe(duplex=False))
        except BaseException:
            _close(*pipes)  # the failure may pass (no file descriptors for now): leak nothing
            raise
        jobs_r, jobs_w, results_r, results_w, stack_r, stack_w, *stdio = pipes
        enlarge_pipe(jobs_w.fileno())
        enlarge_pipe(results_w.fileno())
        enlarge_pipe(
            stack_w.fileno()
        )  # a dump of many threads is written whole, without waiting for us
        try:
            pair = socket_pair() if self.segments is not None else None
        except BaseException:
            _close(*pipes)
            raise
        slot = ctx.RawValue(ctypes.c_longlong, 0)
        recall = ctx.RawValue(ctypes.c_longlong, 0)
        ring = new_ring(ctx)
        options: dict[str, Any] = {
            "target": worker_main,
            "args": (
                jobs_r,
                results_w,
                slot,
                ring,
                self._withdrawn,
                recall,
                self._initializer,
                self._initargs,
                logging.getLogger().getEffectiveLevel(),
                (stdio[1], stdio[3]) if stdio else None,
                lifeline(),
                self._preload,
                self._thread_limit,
                stack_w,
                self.memory_limit,
                pair[1] if pair is not None else None,
            ),
            "name": f"taskpool-worker-{wid}",
            "daemon": True,
        }
        try:
            if self._template:
                process: Any = TemplateProcess(acquire(self._preload), **options)
            else:
                process = ctx.Process(**options)  # type: ignore[attr-defined]
            process.start()
        except BaseException:
            _close(*pipes)
            if pair is not None:
                pair[0].close()
                pair[1].close()
            raise
        death_fd = watch_death(process, self._start_method)
        # The worker's ends: the parent keeps none, so that only the worker (and what its jobs start) holds them.
        _close(jobs_r, results_w, stack_w, *stdio[1::2])
        link = None
        if pair is not None and self.segments is not None:
            pair[1].close()
            link = Link(pair[0], self.segments, wid, False)
        w = Worker(
            wid,
            process,
            FrameReader(results_r.fileno(), link.land if link is not None else None),
            FrameWriter(jobs_w.fileno(), link.lend if link is not None else None),
            slot,
            ring,
            recall,
            results_r,
            jobs_w,
            death_fd,
            stack_r,
            oom_kills(self._oom_paths),
            Capture(stdio[0], stdio[2]) if stdio else None,
            link,
        )
        self.by_id[wid] = w
        self._selector.register(w.reader.fd, selectors.EVENT_READ, (RESULTS, w))
        self._selector.register(death_fd, selectors.EVENT_READ, (SENTINEL, w))
        if w.capture is not None:
            for fd in w.capture.live:
                self._selector.register(fd, selectors.EVENT_READ, (CAPTURE, w))
        return w

    def send(self, w: Worker, messages: list[Any]) -> None:
        """Queue a batch of messages for ``w`` and write what its jobs pipe takes now."""
        sending(w.link)  # the job arguments snapshotted in shared memory are lent to this worker
        try:
            w.writer.queue(messages)
        finally:
            sending(None)
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

    def give_back(self) -> None:
        """Tell each worker which of its result segments the parent no longer maps, so that it reuses them."""
        for w in self.by_id.values():
            link = w.link
            if link is not None and link.released:
                tokens = link.take_released()
                if not w.quitting:
                    self.send(w, [release_message(tokens)])

    def retire(self, w: Worker, reason: str = "the pool is closing") -> None:
        """Tell ``w`` to exit after the jobs it has; it takes no more."""
        if not w.quitting:
            w.quitting = True
            w.exit_reason = reason
            self.send(w, [QUIT])

    def over_memory(self, w: Worker, used: int) -> None:
        """``w`` is past ``max_memory_per_worker`` and exits by itself: send it nothing more."""
        w.quitting = True
        limit = self.memory_limit or 0
        w.exit_reason = f"memory limit: {format_size(used)} > {format_size(limit)}"

    def abandon_all(self) -> None:
        """Forget every job the workers hold and kill them (the pool is broken)."""
        for w in self.by_id.values():
            w.inflight.clear()
            w.exit_reason = "the pool is broken"
            w.kill()

    def kill_all(self) -> None:
        for w in self.by_id.values():
            w.kill()

    def terminate_all(self) -> None:
        """Forget every job the workers hold and ask them, and what their jobs started, to end now (SIGTERM)."""
        for w in self.by_id.values():
            w.inflight.clear()
            w.exit_reason = "the pool was terminated"
            signal_worker(w.process, signal.SIGTERM)

    def stop(self, job: Job, reports: list[Report]) -> bool:
        """Stop ``job`` if a worker holds it. Returns whether one does.

        A worker that runs it now is killed (the job is settled when it is reaped); one that holds it queued
        may still run it, but its outcome is dropped, and the job is reported stopped now.
        """
        for w in self.by_id.values():
            if w.inflight.get(job.id) is job and job.id not in w.discard:
                if w.slot.value == job.id and w.kill_reason is None:
                    w.kill_reason = KillReason(job.id, None, w.stack())
                    w.exit_reason = f"killed: job {job.name!r} was stopped"
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
        timeout = job.options.timeout if job.options.timeout is not None else 0.0
        stack = w.stack()
        error = JobTimeoutError(timeout, job.name, stack, where_stuck(stack))
        w.kill_reason = KillReason(job_id, error)
        w.exit_reason = f"killed: job {job.name!r} ran past its timeout of {timeout:g} s"
        w.kill()

    def stop_watching(self, w: Worker) -> None:
        """Unregister ``w``'s results pipe, if it still is (its end of file is read)."""
        if w.reader.fd in self._selector.get_map():
            self._selector.unregister(w.reader.fd)

    def read_output(self, w: Worker) -> list[tuple[str, str]]:
        """Read what ``w``'s stdout and stderr pipes hold now: ``[(stream, whole lines)]``.

        A pipe at end of file (no process holds it any more) is not watched from then on.
        """
        capture = w.capture
        if capture is None:
            return []
        pieces, ended = capture.read()
        selector_map = self._selector.get_map()
        for fd in ended:
            if fd in selector_map:
                self._selector.unregister(fd)
        return pieces

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
        if w.capture is not None:
            selector_map = sel.get_map()
            for fd in w.capture.live:
                if fd in selector_map:
                    sel.unregister(fd)
        if w.writer.fd in sel.get_map():
            sel.unregister(w.writer.fd)
        exitcode = reap(w.process)
        lost = getattr(w.process, "template_lost", False)
        if lost:  # how it ended is unknown: reap killed it, since nothing could tell when it ends
            exitcode = None
        running = w.slot.value
        reason = w.kill_reason
        wid, pid = w.wid, w.pid
        oom = not w.killed and oom_killed(exitcode, w.oom_kills, oom_kills(self._oom_paths))
        requeue: list[Job] = []
        for job_id, job in w.inflight.items():
            if job_id in w.discard:
                continue
            if reason is not None and reason.job_id == job_id:
                if reason.error is None:
                    reports.append((ReportKind.STOPPED, job, wid, pid, reason.stack, None))
                else:
                    reports.append((ReportKind.FAILED, job, wid, pid, None, reason.error))
            elif job_id == running and crashes_count:
                detail = _TEMPLATE_LOST if lost else ""
                error = WorkerCrashedError(pid, exitcode, job.name, detail, oom_killed=oom)
                reports.append((ReportKind.FAILED, job, wid, pid, None, error))
            else:
                requeue.append(job)
        del self.by_id[wid]
        if self.segments is not None:
            self.segments.reclaim(wid)  # what it mapped died with it
        w.close_pipes()
        why = _crash_reason(exitcode, oom) if oom or w.exit_reason is None else w.exit_reason
        if lost and w.exit_reason is None:
            why = f"lost: {_TEMPLATE_LOST}"
        reports.append((ReportKind.WORKER_DOWN, None, wid, pid, WorkerExit(exitcode, why), None))
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
        if self.segments is not None:
            self.segments.close()


_TEMPLATE_LOST = (
    "the worker template process it was forked from ended, so the pool could no longer tell when it ends, "
    "and killed it"
)


def _crash_reason(exitcode: int | None, oom: bool) -> str:
    """Why a worker that the pool neither killed nor retired ended, for ``worker_exited``."""
    if oom:
        return "killed by the out-of-memory killer"
    if exitcode is None:
        return "lost"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _close(*conns: Connection) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.close()
