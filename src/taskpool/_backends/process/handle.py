"""`Worker`: the scheduler's view of one worker process — its pipes, the jobs it holds, why it was killed.

Runs in the scheduler thread only, like everything that touches worker state (see `scheduler`). `Workers` in
`lifecycle` starts, kills, reaps and settles them; a `Worker` also builds the batch of messages it is sent.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..._core.reports import Report, ReportKind
from ..._errors import TaskpoolError
from .capture import Capture
from .functions import FUNCTION_CACHE_SIZE, Pickled
from .lineage import signal_worker
from .protocol import (
    FLAG_BEGUN,
    FLAG_SYNC,
    QUIT,
    FrameReader,
    FrameWriter,
    define_message,
    forget_message,
    run_message,
)
from .recall import RECALL_SIGNAL
from .stacks import capture_stack

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from ..._core.job import Job
    from .segments import Link

__all__ = ["CAPTURE", "JOBS", "RESULTS", "SENTINEL", "KillReason", "Worker"]

# What a worker's selector key is about (the first item of its data; the second is the `Worker`): its results
# pipe is readable, its process ended, its jobs pipe takes more of the frames queued for it, its stdout or
# stderr pipe is readable.
RESULTS, SENTINEL, JOBS, CAPTURE = 1, 2, 3, 4
# Bound once: used per job.
SKIPPED, FAILED = ReportKind.SKIPPED, ReportKind.FAILED
#: How many bytes of large arguments a worker may hold, queued and running, before it is sent more (it is
#: always sent one). More: workers wait less for their next large argument; fewer: less shared memory lent
#: at once, so that segments are reused rather than made. Measured: two 8 MB arguments in flight per worker
#: ran about twice as fast as thirty-two.
BIG_HELD_MAX = 16 * 1024 * 1024


class KillReason(NamedTuple):
    """Why the scheduler killed a worker on purpose: the job it was running, and that job's outcome."""

    job_id: int
    #: The job's error (`JobTimeoutError`), or None: the job was stopped on request.
    error: BaseException | None
    #: The worker's stacks when it was stopped (see `stacks`), or None.
    stack: str | None = None


class Worker:
    """The scheduler's view of one worker process (scheduler thread only)."""

    __slots__ = (
        "assigned",
        "big",
        "big_bytes",
        "capture",
        "death_fd",
        "defined",
        "discard",
        "exit_reason",
        "inflight",
        "kill_reason",
        "killed",
        "link",
        "oom_kills",
        "pid",
        "process",
        "quitting",
        "reader",
        "ready",
        "recall_id",
        "results",
        "ring",
        "shared_sent",
        "slot",
        "stack_conn",
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
        recall_id: Any,
        results: Connection,
        writer_conn: Connection,
        death_fd: int,
        stack_conn: Connection,
        oom_kills: int | None,
        capture: Capture | None,
        link: Link | None = None,
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
        #: The shared value where the scheduler writes the id of a job to recall (see `recall`).
        self.recall_id = recall_id
        self.results = results
        self.writer_conn = writer_conn
        #: Readable once the process has ended: a pidfd, or the process's sentinel (see `lineage.watch_death`).
        self.death_fd = death_fd
        #: The shared memory path to it (large arguments out, large results in), or None: the pipes only.
        self.link = link
        #: The tokens of the pool's shared objects whose descriptor it was sent (see `_deliver`).
        self.shared_sent: set[int] = set()
        #: The parent's end of its stack pipe (non-blocking), where it writes its stacks on request.
        self.stack_conn = stack_conn
        os.set_blocking(stack_conn.fileno(), False)
        #: Its cgroup's count of out-of-memory kills when it started (see `memory.oom_kills`), or None.
        self.oom_kills = oom_kills
        #: The pipes its stdout and stderr go to, or None (the pool does not capture output).
        self.capture = capture
        #: The jobs sent to it whose outcome has not come back, by job id, in the order sent.
        self.inflight: dict[int, Job] = {}
        #: The keys of the functions it holds, least recently used first (at most FUNCTION_CACHE_SIZE).
        self.defined: OrderedDict[int, None] = OrderedDict()
        #: Jobs stopped while queued in it: their outcomes are dropped.
        self.discard: set[int] = set()
        #: The bytes of large arguments (in shared memory) of the jobs it holds, by job id, and their sum.
        self.big: dict[int, int] = {}
        self.big_bytes = 0
        #: Jobs sent to it in all (for `max_tasks_per_worker`).
        self.assigned = 0
        self.ready = False
        #: It was told to quit after the jobs it has: it takes no more.
        self.quitting = False
        #: Set when the scheduler kills it on purpose.
        self.kill_reason: KillReason | None = None
        #: The scheduler sent it SIGKILL (so a death by SIGKILL is not the OOM killer's).
        self.killed = False
        #: Why it ended or was told to, for the ``worker_exited`` event (None: see `Workers.settle`).
        self.exit_reason: str | None = None

    def kill(self) -> None:
        """SIGKILL the worker and every process its jobs started (its process group)."""
        self.killed = True
        signal_worker(self.process, signal.SIGKILL)

    def stack(self) -> str | None:
        """Its threads' stacks, taken before a kill; it may end doing so (at most `STACK_WAIT` s)."""
        if self.pid is None:
            return None
        return capture_stack(self.pid, self.stack_conn.fileno(), self.death_fd)

    def recall(self, job_id: int) -> None:
        """Ask the worker to abandon job ``job_id`` if it runs it (see `recall`). Not waited for."""
        self.recall_id.value = job_id
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(self.pid, RECALL_SIGNAL)  # type: ignore[arg-type]

    def take_jobs(
        self,
        pending: deque[Job],
        count: int,
        flags: int,
        max_tasks: int | None,
        reports: list[Report],
        shared_fd: Callable[[int], int | None] | None = None,
    ) -> list[Any]:
        """Take up to ``count`` jobs off ``pending`` for this worker: the messages that send them.

        Sends a function it has not been sent yet first, and retires the worker (a quit after the jobs) once
        it has been given ``max_tasks`` jobs. A job whose future was cancelled is reported skipped instead.
        ``shared_fd`` gives the descriptor of a shared object by token (the backend's registry).
        """
        messages: list[Any] = []
        inflight, defined = self.inflight, self.defined
        sent = 0
        # A cancelled job takes no share of the worker's room: were it counted, a round that met only
        # cancelled jobs would send nothing, and nothing would wake the scheduler for the jobs left behind.
        while sent < count and pending:
            job = pending[0]
            big = job.payload[2]
            if big and self.big_bytes and self.big_bytes + big > BIG_HELD_MAX:
                break  # it holds enough large arguments already: the next one goes when one is done
            pending.popleft()
            # A job put back after its worker died is RUNNING already: asking again would raise.
            future = job.future
            if (
                job.attempt == 1
                and not future.running()
                and not future.set_running_or_notify_cancel()
            ):
                reports.append((SKIPPED, job, None, None, None, None))
                continue
            function, payload, big, tokens = job.payload
            if tokens and not self._deliver(tokens, shared_fd):
                error = TaskpoolError(
                    f"job {job.name or job.id} names shared memory that could not be sent to worker "
                    f"{self.pid}; run it again, or pass the data as a plain argument"
                )
                reports.append((FAILED, job, self.wid, self.pid, None, error))
                continue
            key = function[0]
            if key in defined:
                defined.move_to_end(key)
            else:
                self._define(function, messages)
            # A job with a clock (timeout, backup) must say when it starts, at once.
            job_flags = flags | FLAG_SYNC if job.options.timed else flags
            if job.attempt > 1:
                job_flags |= FLAG_BEGUN
            messages.append(
                run_message(job.id, key, job.kind, payload, job_flags, job.name, job.seed)
            )
            inflight[job.id] = job
            if big:
                self.big[job.id] = big
                self.big_bytes += big
            sent += 1
        self._count(sent, max_tasks, messages)
        return messages

    def take_copy(
        self,
        job: Job,
        flags: int,
        max_tasks: int | None,
        shared_fd: Callable[[int], int | None] | None = None,
    ) -> list[Any] | None:
        """Give this worker a backup copy of ``job``, which runs on another worker: the messages that send it.

        The job's future is RUNNING already, and the copy is not a new attempt. It is flagged FLAG_BEGUN: the
        job has begun (on the other worker), so withdrawing the jobs not begun leaves the copy alone. None: the
        shared memory the job names could not be sent to this worker (the copy is not sent).
        """
        function, payload, big, tokens = job.payload
        if tokens and not self._deliver(tokens, shared_fd):
            return None
        messages: list[Any] = []
        if function[0] in self.defined:
            self.defined.move_to_end(function[0])
        else:
            self._define(function, messages)
        copy_flags = flags | FLAG_SYNC | FLAG_BEGUN
        messages.append(
            run_message(job.id, function[0], job.kind, payload, copy_flags, job.name, job.seed)
        )
        self.inflight[job.id] = job
        if big:
            self.big[job.id] = big
            self.big_bytes += big
        self._count(1, max_tasks, messages)
        return messages

    def _count(self, sent: int, max_tasks: int | None, messages: list[Any]) -> None:
        self.assigned += sent
        if max_tasks is not None and self.assigned >= max_tasks:
            # Retire the worker after the jobs it has: the pool replaces it when it exits.
            messages.append(QUIT)
            self.quitting = True
            self.exit_reason = f"max_tasks_per_worker: it was given {self.assigned} jobs"

    def done(self, job_id: int) -> None:
        """Job ``job_id`` left it (its outcome came): its large arguments no longer count against it."""
        self.big_bytes -= self.big.pop(job_id, 0)

    def _deliver(self, tokens: list[int], shared_fd: Callable[[int], int | None] | None) -> bool:
        """Send the descriptors of the shared objects a job names that this worker lacks, before the job."""
        sent, link = self.shared_sent, self.link
        for token in tokens:
            if token in sent:
                continue
            fd = shared_fd(token) if shared_fd is not None else None
            if link is None or fd is None or not link.channel.send(token, fd, wait=True):
                return False
            sent.add(token)
        return True

    def _define(self, function: Pickled, messages: list[Any]) -> None:
        """Send ``function``; past FUNCTION_CACHE_SIZE, the worker forgets its least recently used one."""
        defined = self.defined
        defined[function.key] = None
        messages.append(define_message(function.key, function.data))
        if len(defined) > FUNCTION_CACHE_SIZE:
            oldest, _ = defined.popitem(last=False)
            messages.append(forget_message((oldest,)))

    def close_pipes(self) -> None:
        for conn in (self.results, self.writer_conn, self.stack_conn):
            with contextlib.suppress(OSError):
                conn.close()
        if self.link is not None:
            self.link.close()
        if self.capture is not None:
            self.capture.close()
        if self.death_fd != self.process.sentinel:  # a pidfd of ours
            with contextlib.suppress(OSError):
                os.close(self.death_fd)
