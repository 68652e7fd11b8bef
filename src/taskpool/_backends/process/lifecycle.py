"""The worker processes of the process backend, as the scheduler sees them: start, kill, reap, settle.

Runs in the scheduler thread only, like everything that touches worker state (see `scheduler`). `Workers` is
the set of `Worker`s (see `handle`): it starts a worker (`launch`), registers its pipes with the scheduler's
selector, kills and reaps workers, and when one has ended settles the jobs it held.

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

import ctypes
import itertools
import selectors
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..._core.reports import Report, ReportKind, WorkerExit
from ..._errors import JobTimeoutError, WorkerCrashedError
from .handle import CAPTURE, JOBS, RESULTS, SENTINEL, KillReason, Worker
from .launch import Recipe, launch
from .lender import SegmentPool
from .lineage import reap, signal_worker
from .memory import format_size, oom_events_paths, oom_killed, oom_kills
from .protocol import (
    QUIT,
    forget_message,
    release_message,
)
from .segments import sending
from .stacks import where_stuck

if TYPE_CHECKING:
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
        terminating: threading.Event | None = None,
    ) -> None:
        #: The segments large arguments travel in, lent to every worker; None: they go through the pipes.
        self.segments = segments
        self._selector = selector
        #: ``max_memory_per_worker`` in bytes, or None.
        self.memory_limit = memory_limit
        self._wids = itertools.count(1)
        # Shared by every worker of the backend, which reads it before each job: jobs up to this id that have
        # not begun are skipped (`withdraw`). Written by a caller thread; a plain shared integer suffices,
        # since a worker that reads it a moment late only runs a job that it had been handed anyway.
        self._withdrawn = ctx.RawValue(ctypes.c_longlong, 0)
        self._spec = Recipe(
            ctx,
            initializer,
            initargs,
            capture_output,
            preload,
            thread_limit,
            template,
            memory_limit,
            segments,
            self._withdrawn,
            oom_events_paths(),  # found once
            ctx.get_start_method(),
            terminating if terminating is not None else threading.Event(),
        )
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
        """Start a worker process (see `launch`) and watch its results pipe and its sentinel.

        Raises:
            Exception: the process could not start (the initializer or its arguments do not pickle, no fork).
        """
        wid = next(self._wids)
        w = launch(self._spec, wid)
        self.by_id[wid] = w
        self._selector.register(w.reader.fd, selectors.EVENT_READ, (RESULTS, w))
        self._selector.register(w.death_fd, selectors.EVENT_READ, (SENTINEL, w))
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
        oom = not w.killed and oom_killed(exitcode, w.oom_kills, oom_kills(self._spec.oom_paths))
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
