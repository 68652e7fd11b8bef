"""The scheduler thread of the process backend: one select loop that owns every worker process.

Threads and processes::

    caller threads            scheduler thread (exactly one)                        worker processes
    submit() -> inbox -> wake pipe -> selector.select([wake, results pipes, stdout and stderr pipes,
                                                        sentinels, writable jobs pipes],
                                                       timeout=next deadline)
                                      dispatch: batches of jobs per worker     -> jobs pipe -> run in order
                                      read outcomes, logs                      <- results pipe
                                      read prints (descriptors 1 and 2)        <- stdout, stderr pipes
                                      deaths, deadlines, retirement -> respawn
                                      reports -> sink (the pool's event thread)

`Scheduler.run` is the scheduler thread; everything else in this module runs in it, except what caller
threads do through the backend (`taskpool._backends.process.backend`): append to ``Scheduler.inbox`` (a deque:
append and popleft are atomic), call `Wakeup.wake`, and set ``Scheduler.want_started``. Only the scheduler
thread touches worker state (`Workers`, the pending queue, the deadlines). It never blocks on a worker: its
end of every jobs pipe is non-blocking, and results are reassembled from non-blocking reads.

The inbox holds jobs and control requests, in the order they were made: `StopRequest`, `WithdrawRequest` and
`QuitRequest`. A quit moves the scheduler from `Phase.RUNNING` to `Phase.DRAINING` (let workers finish and
exit) or `Phase.KILLING` (end them now); either way it ends within `QUIT_GRACE` seconds.

Deadlines: a job with a timeout is sent flagged FLAG_SYNC; the worker reports its start, the scheduler puts
``start + timeout`` in a `TimerHeap` and sleeps in ``select`` no longer than the nearest deadline. A job past
its deadline has its worker killed; the job fails with `JobTimeoutError` and the worker is replaced.

Backups (``backup_after``): a job that runs past its backup delay gets a copy on another worker, ahead of the
pending queue, and the first outcome wins; `taskpool._backends.process.backups` keeps the races and decides
each round's reports about them before they go to the event thread.

No lock is held while user code runs anywhere in the parent: the scheduler runs none (unpickling aside), and
outcomes go to the event thread through the sink.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._core.job import Job, job_name
from ..._core.reports import Report, ReportKind, Sink
from ..._core.timers import TimerHeap
from ..._errors import RemoteTraceback, TaskpoolError
from .backups import Backups
from .batching import Batchings, kind_of, share, workers_to_start
from .functions import drain
from .gate import ReadGate
from .handle import CAPTURE, RESULTS, SENTINEL, Worker
from .inbound import Inbound
from .inbox import QuitRequest, StopRequest, Wakeup, WithdrawRequest
from .lender import SegmentPool
from .lifecycle import Workers
from .protocol import (
    FLAG_STARTED,
)
from .ring import read_outcomes
from .startup import SpawnBackoff, StartupFailures

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from ..._core.backlog import Backlog

__all__ = ["QUIT_GRACE", "Phase", "Scheduler"]

log = logging.getLogger("taskpool")

# How long a graceful shutdown waits for workers to exit before it kills them.
QUIT_GRACE = 5.0
# How long a terminate waits for workers to end on SIGTERM before it kills them.
_KILL_GRACE = 1.0


class Phase(enum.Enum):
    """Where the scheduler is in its life."""

    #: Taking jobs and sending them to workers.
    RUNNING = "running"
    #: Told to quit after the jobs it has: workers finish them and exit.
    DRAINING = "draining"
    #: Told to quit now: workers are ended, their jobs forgotten.
    KILLING = "killing"


# Bound once: these are used per job or per message, where an attribute lookup on the enum class shows.
FAILED, SKIPPED = ReportKind.FAILED, ReportKind.SKIPPED
RUNNING, DRAINING, KILLING = Phase.RUNNING, Phase.DRAINING, Phase.KILLING
# The selector key of the wake pipe (a worker's keys are tagged by `lifecycle`).
_WAKE = 0


class Scheduler(Inbound):
    """The scheduler thread's state and loop; see the module docstring for the threading model."""

    def __init__(
        self,
        size: int,
        ctx: BaseContext,
        *,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks: int | None,
        capture_output: bool,
        dropped_functions: deque[int],
        preload: tuple[str, ...] = (),
        thread_limit: int | None = None,
        template: bool = False,
        memory_limit: int | None = None,
        segments: SegmentPool | None = None,
        shared_fd: Callable[[int], int | None] | None = None,
    ) -> None:
        # Shared with caller threads (see the module docstring).
        self.inbox: deque[Job | StopRequest | QuitRequest | WithdrawRequest] = deque()
        self.wakeup = Wakeup()
        self.want_started = False
        self.sink: Sink = lambda reports: None
        #: What the sink holds unhandled; the gate stops reading results while it is over its bound.
        self.backlog: Backlog | None = None
        #: Set when the thread has ended and every worker is reaped.
        self.done = threading.Event()
        #: Set by a caller thread terminating the pool, before it asks the thread to quit: a worker start
        #: still waiting for its template gives up, so that the quit request is read at once.
        self.terminating = threading.Event()
        # Keys of functions the parent's cache dropped: caller threads append, this thread tells workers.
        self._dropped_functions = dropped_functions
        # Scheduler thread only.
        self._size = size
        self._max_tasks = max_tasks
        self._shared_fd = shared_fd
        self._selector = selectors.DefaultSelector()
        self._gate = ReadGate(self._selector, self.wakeup.wake)
        self._workers = Workers(
            ctx,
            self._selector,
            initializer,
            initargs,
            capture_output,
            preload=preload,
            thread_limit=thread_limit,
            template=template,
            memory_limit=memory_limit,
            segments=segments,
            terminating=self.terminating,
        )
        self._initializer_name = job_name(initializer) if initializer is not None else None
        self._backoff = SpawnBackoff()
        self._startup = StartupFailures(self._initializer_name)
        self._pending: deque[Job] = deque()
        # (worker id, job id, attempt) of each job with a timeout, due at its deadline.
        self._deadlines: TimerHeap[tuple[int, int, int]] = TimerHeap()
        self._batching = Batchings()
        self._backups = Backups(size)
        self._broken: BaseException | None = None
        self._phase = RUNNING
        self._quit_deadline = 0.0

    def run(self) -> None:
        """The scheduler thread: until told to quit and every worker is gone."""
        sel, wakeup, by_id = self._selector, self.wakeup, self._workers.by_id
        sel.register(wakeup.r, selectors.EVENT_READ, (_WAKE, None))
        w: Worker
        try:
            while True:
                reports: list[Report] = []
                self._gate.update(self.backlog, self._workers)
                for key, _mask in sel.select(self._select_timeout()):
                    tag, w = key.data
                    if tag == _WAKE:
                        wakeup.drain()
                        continue
                    if w is not by_id.get(w.wid):
                        continue  # its sentinel came first this round: _on_exit closed this fd already
                    if tag == RESULTS:
                        self._read(w, reports)
                    elif tag == CAPTURE:
                        self._read_output(w, reports)
                    elif tag == SENTINEL:
                        self._on_exit(w, reports)
                    else:
                        self._workers.flush(w)
                self._take_inbox(reports)
                if self._workers.segments is not None:
                    self._workers.give_back()
                if self._dropped_functions:
                    self._workers.forget(drain(self._dropped_functions))
                if self._deadlines:
                    for wid, job_id, attempt in self._deadlines.pop_due(time.monotonic()):
                        self._workers.expire(wid, job_id, attempt)
                backups = self._backups
                if backups.due:
                    backups.expire(time.monotonic(), self._workers, self._phase is RUNNING)
                if backups.races:
                    reports = backups.settle(reports, self._workers)
                if self._phase is RUNNING and self._broken is None:
                    self._dispatch(reports)
                if reports:
                    self.sink(reports)
                if self._phase is not RUNNING and self._quitting_done():
                    break
        # A bug here must reach the futures, not vanish with this thread.
        except BaseException as exc:
            log.critical("taskpool scheduler thread failed", exc_info=True)
            error = TaskpoolError(f"the pool's scheduler thread failed: {exc!r}")
            with contextlib.suppress(BaseException):
                self.sink([(ReportKind.BROKEN, None, None, None, None, error)])
            self._workers.kill_all()
        finally:
            self._workers.reap_all()
            wakeup.close()
            sel.close()
            self.done.set()

    def _select_timeout(self) -> float | None:
        now = time.monotonic()
        # A worker failed to start and jobs wait: wake up to try again.
        waiting = self._pending or self._backups.waiting
        spawn_wait = self._backoff.not_before - now if waiting else 0.0
        if (
            not self._deadlines
            and not self._backups.due
            and self._phase is RUNNING
            and spawn_wait <= 0
        ):
            return None
        wait = _earliest(self._deadlines.wait_time(now), self._backups.wait_time(now))
        if spawn_wait > 0:
            wait = spawn_wait if wait is None else min(wait, spawn_wait)
        if self._phase is not RUNNING:
            quit_wait = max(0.0, self._quit_deadline - now)
            wait = quit_wait if wait is None else min(wait, quit_wait)
        return wait

    def _take_inbox(self, reports: list[Report]) -> None:
        inbox, pending = self.inbox, self._pending
        while inbox:
            item = inbox.popleft()
            if type(item) is Job:
                if self._broken is not None:
                    reports.append((FAILED, item, None, None, None, self._broken))
                else:
                    pending.append(item)
            elif type(item) is StopRequest:
                self._stop_job(item.job, reports)
            elif type(item) is QuitRequest:
                self._begin_quit(item.wait)
            elif type(item) is WithdrawRequest:
                self._withdraw(item.upto, reports)

    def _withdraw(self, upto: int, reports: list[Report]) -> None:
        """Report every cancelled job still queued as skipped now, not when a worker would have had room
        for it; make workers skip the jobs up to ``upto`` they hold and have not begun."""
        self._workers.withdraw(upto)
        pending = self._pending
        # One pass, in order: a cancelled job is reported, the others go back.
        for _ in range(len(pending)):
            job = pending.popleft()
            if job.attempt == 1 and job.future.cancelled():
                _skip(job, reports)
            else:
                pending.append(job)

    # -- jobs out -----------------------------------------------------------------------------------------
    def _dispatch(self, reports: list[Report]) -> None:
        pending, backups = self._pending, self._backups
        _skip_cancelled_head(pending, reports)
        if not pending and not backups.waiting:
            return
        workers = self._workers
        open_workers = [w for w in workers if not w.quitting and w.kill_reason is None]
        if len(open_workers) < self._size:
            idle = sum(1 for w in open_workers if not w.inflight)
            wanted = len(pending) + len(backups.waiting)
            for _ in range(workers_to_start(self._size, len(open_workers), idle, wanted)):
                w, error = self._backoff.attempt(workers.spawn, time.monotonic())
                if error is not None:
                    self._break(error, reports)
                    return
                if w is None:
                    break  # none starts now: _select_timeout wakes the loop to try again
                open_workers.append(w)
        open_workers.sort(key=lambda w: len(w.inflight))
        flags = FLAG_STARTED if self.want_started else 0
        batching, max_tasks = self._batching, self._max_tasks
        if backups.waiting:
            # Backup copies go first: each is a job that has kept a worker too long already.
            backups.dispatch(
                open_workers, batching, workers.send, flags, max_tasks, self._shared_fd
            )
            open_workers.sort(key=lambda w: len(w.inflight))
        # The queue's head says how long the next jobs may take (a run of one function, mostly).
        policy = batching.of(kind_of(pending[0])) if pending else None
        for i, w in enumerate(open_workers):
            if policy is None or not pending:
                break
            room = policy.room(len(w.inflight), w.assigned, max_tasks)
            count = share(len(pending), len(open_workers) - i, room)
            if count <= 0:
                continue
            messages = w.take_jobs(pending, count, flags, max_tasks, reports, self._shared_fd)
            if messages:
                workers.send(w, messages)

    # -- stops, deadlines, deaths -------------------------------------------------------------------------
    def _break(self, error: BaseException, reports: list[Report], detail: str = "") -> None:
        """The pool cannot run jobs (its initializer fails): fail everything, start no more workers."""
        if self._broken is not None:
            return
        if detail:
            error.__cause__ = RemoteTraceback(detail)
        self._broken = error
        reports.append((ReportKind.BROKEN, None, None, None, None, error))
        self._pending.clear()
        self._backups.clear()
        self._workers.abandon_all()

    def _stop_job(self, job: Job, reports: list[Report]) -> None:
        if self._workers.stop(job, reports):
            return
        if job in self._pending:
            self._pending.remove(job)
        # Between two attempts (a retry waits): stopped all the same; the pool drops the retry as done.
        reports.append((ReportKind.STOPPED, job, None, None, None, None))

    def _on_exit(self, w: Worker, reports: list[Report]) -> None:
        """A worker's process ended: settle every job it held, then forget it."""
        if self._gate.release(w) or w.reader.fd in self._selector.get_map():
            self._read(w, reports)  # outcomes it wrote before it died still count
        self._read_output(w, reports)  # what it printed before the outcomes its ring kept
        # Then those its ring kept, of the jobs it still holds: an outcome the pipe brought too counts once.
        left = [message for message in read_outcomes(w.ring) if message[1] in w.inflight]
        self._handle(w, left, reports)
        # What it printed last (a faulthandler dump of its crash), before the crash is reported. Read once:
        # a process its job started may hold the pipe open, and nobody waits for that.
        self._read_output(w, reports, final=True)
        phase, workers = self._phase, self._workers
        exitcode, requeue = workers.settle(w, reports, crashes_count=phase is not KILLING)
        requeue = self._backups.worker_gone(w.wid, requeue, phase is RUNNING)
        if requeue and ((phase is RUNNING and self._broken is None) or phase is DRAINING):
            # Draining too: jobs a dying worker held must still run, so the drain goes on with a new worker.
            self._pending.extendleft(reversed(requeue))
        if not w.ready and w.kill_reason is None and phase is RUNNING:
            error = self._startup.exited(exitcode)
            if error is not None and self._broken is None:
                self._break(error, reports)
        if phase is DRAINING and self._pending:
            self._dispatch(reports)
            for other in workers:
                workers.retire(other)

    # -- quitting -----------------------------------------------------------------------------------------
    def _begin_quit(self, wait: bool) -> None:
        phase = self._phase
        if phase is KILLING or (phase is DRAINING and wait):
            return
        self._phase = DRAINING if wait else KILLING
        self._quit_deadline = time.monotonic() + (QUIT_GRACE if wait else _KILL_GRACE)
        if wait:
            self._backups.drop_waiting()  # retired workers take no copies
            for w in self._workers:
                self._workers.retire(w)
        else:
            self._pending.clear()
            self._backups.clear()
            self._workers.terminate_all()

    def _quitting_done(self) -> bool:
        if self._workers and time.monotonic() >= self._quit_deadline:
            self._workers.kill_all()  # the grace period is over
            return True
        return not self._workers


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _skip_cancelled_head(pending: deque[Job], reports: list[Report]) -> None:
    """Report skipped the cancelled jobs at the front of ``pending``, so that no worker starts for them.

    Cheap: it stops at the first job that is not cancelled (`Worker.take_jobs` skips the others it meets).
    """
    while pending and pending[0].attempt == 1 and pending[0].future.cancelled():
        _skip(pending.popleft(), reports)


def _skip(job: Job, reports: list[Report]) -> None:
    """Report skipped a cancelled job that no worker was handed."""
    # RuntimeError: notified already, nothing left to tell its waiters.
    with contextlib.suppress(RuntimeError):
        job.future.set_running_or_notify_cancel()
    reports.append((SKIPPED, job, None, None, None, None))
