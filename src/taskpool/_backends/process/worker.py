"""The worker process: runs jobs in the order it receives them and sends back outcomes.

Process model: this module's `worker_main` is the whole life of one worker process. Its main thread blocks on
its *jobs* pipe, runs each job in order, and writes outcomes to its *results* pipe. Jobs it receives in one
batch run back to back; their outcomes are sent together (`outbox`) when the batch is done, when
`FLUSH_INTERVAL` has passed, or around a job flagged FLAG_SYNC (one with a deadline), so tiny jobs cost one
write per batch and a lone job is answered at once.

Before each job it writes the job's id to a shared slot, so that if the process dies, the parent knows which
job was running: that one fails with `WorkerCrashedError`. Each outcome is also copied into the worker's
outcome ring (shared memory, see `ring`) before the slot is cleared, and the ring is emptied after each frame
is written to the pipe; so when the process dies, every job that finished has its outcome in the pipe or the
ring, and the jobs after the running one never started. An outcome the ring does not take (a large one, or
a full ring) is written to the pipe before the next job starts.

Two more duties, each in a module of its own: on the parent's request before a kill, `faulthandler` writes
every thread's stack to the worker's stack pipe and the worker ends (`stacks`); with a memory limit, the
worker checks its private memory after each job and exits past it, its queued jobs unstarted (`memory`).

Threads a job starts may log: the `Outbox` lock serializes writes to the results pipe within this process.
What the worker prints, at the Python or the descriptor level, goes to its stdout and stderr pipes (see
`stdio`), which the parent reads apart from the results pipe. No lock is shared with other processes, so a
killed worker cannot leave one held.

A job can be recalled without killing its worker (`recall`): the parent uses it for a backup copy that lost
its race.
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._errors import SerializationError
from ..._runtime import sharing
from ..._runtime.attempt import call, encode_error, encode_value, format_traceback, process_job
from ..._runtime.seeding import SeedKey
from ..._runtime.serialize import loads_checked
from ..._runtime.threadlimit import limit_threads
from .lender import SegmentPool
from .lineage import lead_own_group, watch_lifeline
from .memory import MemoryCheck
from .outbox import Outbox, RecordForwarder
from .protocol import (
    FLAG_BEGUN,
    FLAG_STARTED,
    FLAG_SYNC,
    OP_DEFINE,
    OP_FORGET,
    OP_QUIT,
    OP_RELEASE,
    OP_RUN,
    DefineMessage,
    ForgetMessage,
    ReleaseMessage,
    RunMessage,
    init_failed_message,
    over_memory_message,
    read_frame,
    ready_message,
    skipped_message,
    started_message,
)
from .recall import accept_recalls, check_recall, in_job
from .ring import OutcomeRing
from .segments import Link, receiving
from .stacks import dump_stacks_on_signal
from .stdio import StdioFlusher, redirect

if TYPE_CHECKING:
    import socket
    from multiprocessing.connection import Connection


def _run_job(
    functions: dict[int, Any],
    key: int,
    kind: int,
    payload: Any,
    name: str | None,
    seed: SeedKey | None,
    recallable: bool = False,
) -> tuple[bool, Any, str | None]:
    """Run one job: ``(ok, pickled value or exception, traceback text)``, not yet wrapped for the trip (the
    outbox decides between the ring and the pipe). Its arguments and value live in this frame only, so they
    are freed when it returns."""
    try:
        fn = functions[key]
        if isinstance(fn, SerializationError):
            # Unpickled once per worker, before any job had it: name the job that needs it now.
            raise SerializationError(fn.part, fn.stage, fn.where, name, fn.reason)
        args = loads_checked(payload, "arguments", "worker", name)
        # A recall lands between these two stores, or is ignored: raised in the `finally`, it is still caught
        # below, and never escapes into the worker's own loop.
        in_job[0] = True
        try:
            if recallable:
                check_recall()  # recalled between its start report and now
            if seed is not None:
                value = call(fn, kind, args if kind else args[0], {} if kind else args[1], seed)
            else:
                value = call(fn, kind, args, {}) if kind else fn(*args[0], **args[1])
        finally:
            in_job[0] = False
        return True, encode_value(value, name), None
    except BaseException as exc:
        error, tb = encode_error(exc, name)
        return False, error, tb


def worker_main(
    jobs: Connection,
    results: Connection,
    slot: Any,
    ring: Any,
    withdrawn: Any,
    recall: Any,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    log_level: int,
    stdio: tuple[Connection, Connection] | None,
    lifeline: Connection | None = None,
    preload: tuple[str, ...] = (),
    thread_limit: int | None = None,
    stack_pipe: Connection | None = None,
    memory_limit: int | None = None,
    shm_socket: socket.socket | None = None,
) -> None:
    """Entry point of a worker process (runs in the worker, main thread).

    ``withdrawn`` is the pool's shared withdrawal mark: a job whose id is at most its value, and that has not
    begun before (no FLAG_BEGUN), is skipped and reported so, not run (see `Workers.withdraw`).
    ``lifeline`` is the read end of the pool's process's lifeline (see `lineage`): this worker and whatever
    its jobs start end when it does. ``thread_limit`` caps native thread pools (see `threadlimit`), before
    the ``preload`` modules are imported (a template imported them already: then it costs nothing) and
    before the initializer runs. ``stack_pipe`` is where it writes its stacks when the parent asks before
    a kill (see `stacks`). With ``memory_limit``, it exits after a job that leaves its private memory past
    that many bytes (see `memory`), and the pool replaces it; past it before its first job, it says so
    instead of ready, and the pool breaks (a replacement would be past it too).
    ``stdio`` are the write ends of the pipes the parent reads this worker's stdout and stderr from (see
    `stdio`), or None: the worker writes where the parent's process does. ``shm_socket`` is this worker's
    end of the socket that descriptors of shared memory travel on (see `segments`), or None: large data
    goes through the pipes.
    """
    # Ctrl-C in a terminal goes to the foreground process group, which this worker leaves just below; it is
    # ignored all the same (a job's own processes inherit that), since the parent decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    accept_recalls(slot, recall)
    lead_own_group()
    watch_lifeline(lifeline)
    if thread_limit is not None:
        limit_threads(thread_limit)
    if stack_pipe is not None:
        dump_stacks_on_signal(stack_pipe.fileno())  # the Connection stays open: this frame holds it
    jobs_fd, results_fd = jobs.fileno(), results.fileno()
    link = Link(shm_socket, SegmentPool(), 0, True) if shm_socket is not None else None
    if link is not None:
        receiving(link)  # where the job arguments snapshotted in shared memory land
        sharing.fd_source.append(link.channel.take)  # where the pool's shared objects come from
    land = link.land if link is not None else None
    outbox = Outbox(results_fd, OutcomeRing(ring), link)

    root = logging.getLogger()
    for handler in list(
        root.handlers
    ):  # handlers inherited through fork would write from here directly
        root.removeHandler(handler)
    root.addHandler(RecordForwarder(outbox))
    root.setLevel(log_level)
    flush_stdio: StdioFlusher | None = None
    if stdio is not None:
        own = [jobs_fd, results_fd, *(c.fileno() for c in (lifeline, stack_pipe, shm_socket) if c)]
        flush_stdio = redirect(*stdio, keep=own)

    if preload or initializer is not None:
        what = ""
        try:
            for module in preload:
                what = f"preload module {module!r}: "
                importlib.import_module(module)
            what = ""
            if initializer is not None:
                initializer(*initargs)
        except BaseException as exc:
            if flush_stdio is not None:
                flush_stdio()
            text = f"{what}{type(exc).__name__}: {exc}\n{format_traceback(exc)}"
            outbox.add(init_failed_message(text))
            outbox.flush()
            return
    memory = MemoryCheck(memory_limit) if memory_limit is not None else None
    if memory is not None:
        used = memory.over()
        if (
            used is not None
        ):  # before any job: every replacement would be past it too, after each job
            outbox.add(over_memory_message(used))
            outbox.flush()
            return
    if flush_stdio is not None:
        flush_stdio()
    outbox.add(ready_message(os.getpid()))
    outbox.flush()

    functions: dict[int, Any] = {}
    local: deque[Any] = deque()
    poller = select.poll()
    poller.register(jobs_fd, select.POLLIN)
    perf = time.perf_counter

    while True:
        if not local:
            try:
                if outbox.pending():
                    outbox.flush()
                local.extend(read_frame(jobs_fd, land))
            except (EOFError, OSError):
                return  # the parent closed our pipe: it is gone or shutting down
            continue
        op = local.popleft()
        code = op[0]
        if code == OP_RUN:
            run: RunMessage = op
            _, job_id, key, kind, payload, flags, name, seed = run
            if job_id <= withdrawn.value and not flags & FLAG_BEGUN:
                outbox.add(skipped_message(job_id))
                outbox.arm()
                del op, run, payload
                continue
            if flags & FLAG_SYNC:
                outbox.add(started_message(job_id))
                outbox.flush()
            elif flags & FLAG_STARTED:
                outbox.add(started_message(job_id))
                outbox.arm()
            process_job[0], process_job[1] = job_id, name
            slot.value = job_id
            t0 = perf()
            # Only a job with a clock (FLAG_SYNC) can be recalled: a backup copy, or the job it backs up.
            ok, out, tb = _run_job(
                functions, key, kind, payload, name, seed, bool(flags & FLAG_SYNC)
            )
            duration = perf() - t0
            if flush_stdio is not None:
                # What the job wrote reaches its pipe before its outcome is sent (see `stdio`).
                flush_stdio()
            if not outbox.add_result(job_id, ok, out, tb, duration):
                outbox.flush()
            # Only now, its outcome safe in the ring or the pipe, has the job finished: dying before this
            # line fails it as the running job; after, it keeps its outcome.
            slot.value = 0
            process_job[0], process_job[1] = 0, None
            # Hold nothing of a finished job (its arguments may be its result): they are freed, and their
            # finalizers run, now rather than when the next job comes.
            del op, run, payload, out
            if memory is not None:
                used = memory.over()
                if used is not None:
                    # The jobs it still holds never started: the pool runs them on a fresh worker.
                    outbox.add(over_memory_message(used))
                    outbox.flush()
                    return
            if not local and poller.poll(0):
                try:
                    local.extend(read_frame(jobs_fd, land))
                except (EOFError, OSError):
                    outbox.flush()
                    return
            if not local or flags & FLAG_SYNC:
                outbox.flush()
            else:
                outbox.arm()
        elif code == OP_DEFINE:
            define: DefineMessage = op
            _, key, fn_bytes = define
            try:
                functions[key] = loads_checked(fn_bytes, "function", "worker")
            except SerializationError as exc:
                functions[key] = exc
        elif code == OP_FORGET:
            forget: ForgetMessage = op
            for key in forget[1]:
                functions.pop(key, None)
        elif code == OP_RELEASE:
            release: ReleaseMessage = op
            outbox.release(release[1])
        elif code == OP_QUIT:
            outbox.flush()
            return
