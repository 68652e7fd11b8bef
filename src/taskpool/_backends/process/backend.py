"""The process backend's face to the pool: `ProcessBackend`, run by the caller threads.

The pool's threads call `ProcessBackend.submit`, `stop`, `want_started` and `shutdown`; the work itself is the
scheduler thread's (`taskpool._backends.process.scheduler`), which owns the worker processes. What the caller
side does, and all it shares with the scheduler thread:

- ``submit`` pickles the job's arguments here, in the submitting thread (so the cost is paid by whoever
  submits, and a job that does not pickle fails at once), appends the job to the scheduler's inbox (a deque:
  append and popleft are atomic) and wakes the scheduler only when no wake-up is pending already, so a burst
  of submits costs one syscall. It is the hot path of every job: keep it lean.
- A function is pickled once and sent to each worker once: the function cache
  (`taskpool._backends.process.functions`, a bounded LRU that holds functions weakly) maps it to a key, and
  each job carries its function's key and pickle, which the scheduler sends to a worker that lacks it.
- ``stop`` and ``shutdown`` append a `StopRequest` or a `QuitRequest` to the same inbox, so the scheduler
  sees requests and jobs in the order they were made.
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..._runtime import sharing, shm
from ..._runtime.attempt import JobKind
from ..._runtime.serialize import dumps_split, has_large_buffer
from ..._runtime.sharing import Registry
from . import segments, templates
from .functions import FunctionCache
from .inbox import QuitRequest, StopRequest, WithdrawRequest
from .lender import SegmentPool
from .protocol import wrap
from .scheduler import QUIT_GRACE, Scheduler
from .segments import shm_supported
from .startup import check_importable, refuse_while_main_is_imported

if TYPE_CHECKING:
    from ..._core.backlog import Backlog
    from ..._core.job import Job
    from ..._core.reports import Sink

__all__ = ["ProcessBackend"]

T = TypeVar("T")

_NO_ARGUMENTS = pickle.dumps(((), {}), protocol=5)
# map chunks at most this long are scanned for large buffers to send out of band; long chunks of small items
# (the common case) are not scanned at all.
_SCAN_CHUNK = 64
# Bound once: compared per job on the hot path.
_CALL = JobKind.CALL


# Larger than any buffer: writable buffers go in band (copied into the pickle), as without shared memory.
_NEVER = 1 << 62


def _pickle_arguments(
    obj: Any, swap: bool, name: str | None, snapshots: SegmentPool | None
) -> tuple[Any, int, list[int] | None]:
    """A job's arguments as they travel, and the tokens of the shared objects they name (None if none).

    The arguments are taken as they are now, as a pickle is: buffers of `SHM_MIN` bytes or more are copied
    into shared memory now, by the submitting thread (`Snapshot`, when ``snapshots`` is given); smaller
    writable ones (numpy arrays, bytearrays), or all of them without shared memory, are copied into the
    pickle; smaller read-only ones (``bytes``) travel apart (out of band) from where they lie. Without any
    buffer apart, the pickle itself is marked to travel out of band when it is large.

    Returns ``(payload, big, tokens)``: ``big`` is how many bytes of snapshots the job holds, which bounds how
    many such jobs a worker is sent ahead (`Worker.take_jobs`). The path without buffers is the hot path of
    every small job: keep it lean.
    """
    if sharing.in_use:
        tokens: list[int] = []
        sharing.collect(tokens)
        try:
            main, buffers = dumps_split(obj, "arguments", "parent", name, swap, _in_band(snapshots))
        finally:
            sharing.collect(None)
    else:
        tokens = []
        main, buffers = dumps_split(obj, "arguments", "parent", name, swap, _in_band(snapshots))
    if not buffers:
        return wrap(main), 0, tokens or None
    big = 0
    if snapshots is not None:
        taken = _snapshot_large(buffers, snapshots)
        if taken is None:  # shared memory refused (warned once): in band, as without it
            main, buffers = dumps_split(obj, "arguments", "parent", name, swap, _NEVER)
        else:
            buffers, big = taken
    return ((main, buffers) if buffers else wrap(main)), big, tokens or None


def _in_band(snapshots: SegmentPool | None) -> int:
    """Writable buffers under this size are copied into the pickle (`dumps_split`)."""
    return segments.SHM_MIN if snapshots is not None else _NEVER


def _snapshot_large(buffers: list[Any], snapshots: SegmentPool) -> tuple[list[Any], int] | None:
    """``buffers`` with each of `SHM_MIN` bytes or more copied into a `Snapshot`, and how many bytes those
    are; None if one could not be."""
    out: list[Any] = []
    big = 0
    for buffer in buffers:
        view = buffer.raw()
        if view.nbytes < segments.SHM_MIN:
            out.append(buffer)
            continue
        snapshot = snapshots.snapshot(view)
        if snapshot is None:
            return None
        out.append(snapshot)
        big += view.nbytes
    return out, big


class ProcessBackend:
    """Runs jobs in worker processes; see the module docstring for what runs where."""

    name = "process"
    supports_timeout = True
    supports_stop = True
    supports_backup = True
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
        preload: tuple[str, ...] = (),
        thread_limit: int | None = None,
        max_memory_per_worker: int | None = None,
    ) -> None:
        refuse_while_main_is_imported()
        self.workers = workers
        self.start_method: str | None = start_method or templates.default_start_method()
        # forkserver's safety at fork's speed: workers are forked from a template process (see `templates`).
        template = templates.uses_template(self.start_method)
        if template:
            # Started now, while the pool finishes its own start; with preload, waited for, so that a module
            # that fails to import is an error here, before any job runs.
            started = templates.acquire(preload)
            if preload:
                started.wait_imported()
        else:
            check_importable(preload)
        self._functions = FunctionCache()
        #: The objects `share` and `shared_array` put in shared memory, freed when the pool ends.
        self._registry = Registry()
        #: The segments large arguments travel in (None: the pipes only), filled by submitting threads.
        self._segments = SegmentPool() if shm_supported() and shm.probe() else None
        self._scheduler = Scheduler(
            workers,
            multiprocessing.get_context(self.start_method),
            initializer=initializer,
            initargs=initargs,
            max_tasks=max_tasks_per_worker,
            capture_output=capture_output,
            dropped_functions=self._functions.dropped,
            preload=preload,
            thread_limit=thread_limit,
            template=template,
            memory_limit=max_memory_per_worker,
            segments=self._segments,
            shared_fd=self._registry.fd,
        )
        # Bound once: used on every submit.
        self._inbox = self._scheduler.inbox
        self._wakeup = self._scheduler.wakeup
        self._thread: threading.Thread | None = None

    def start(self, sink: Sink, backlog: Backlog | None = None) -> None:
        """Start the scheduler thread (workers start on demand). Runs in the pool's constructor."""
        self._scheduler.sink = sink
        self._scheduler.backlog = backlog
        self._thread = threading.Thread(
            target=self._scheduler.run, name="taskpool-scheduler", daemon=True
        )
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue one attempt of ``job`` (any thread). Pickles it here, in the caller's thread.

        This is the hot path of every submit: keep it lean.

        Raises:
            SerializationError: the function or the arguments do not pickle.
        """
        if job.payload is None:
            function = self._functions.get(job.fn)
            if function is None:
                function = self._functions.add(job.fn, job.name)
            args = job.args
            if job.kind != _CALL:
                chunk = args[0]
                swap = len(chunk) <= _SCAN_CHUNK and has_large_buffer(chunk)
                job.payload = (function, *_pickle_arguments(chunk, swap, job.name, self._segments))
            elif args or job.kwargs:
                swap = has_large_buffer(args, job.kwargs)
                call = (args, job.kwargs)
                job.payload = (function, *_pickle_arguments(call, swap, job.name, self._segments))
            else:
                job.payload = (function, _NO_ARGUMENTS, 0, None)
        self._inbox.append(job)
        if not self._wakeup.pending:
            self._wakeup.wake()

    def share(self, obj: T) -> T:
        """Put ``obj`` in shared memory once; the handle stands for it in jobs' arguments (any thread).

        Raises:
            SerializationError: ``obj`` does not pickle.
            OSError: shared memory is not available here.
        """
        return cast("T", self._registry.share(obj))

    def shared_array(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A zeroed numpy array in shared memory, written by jobs and read here in place (any thread)."""
        return self._registry.array(shape, dtype)

    def stop(self, job: Job) -> bool:
        """Ask the scheduler to stop ``job`` (any thread): it kills the worker if the job is running."""
        self._inbox.append(StopRequest(job))
        self._wakeup.wake()
        return True

    def withdraw(self, upto: int) -> None:
        """Cancel the jobs up to id ``upto`` that workers were handed and have not begun (caller thread).

        Workers hold a few jobs ahead of the one they run, so that a short job never waits for the next
        one's round trip; their futures are already running. Each worker skips those instead of running
        them, and their futures end cancelled.
        """
        self._inbox.append(WithdrawRequest(upto))
        self._wakeup.wake()

    def want_started(self, enabled: bool) -> None:
        self._scheduler.want_started = enabled

    def shutdown(self, wait: bool) -> None:
        """Stop the workers and the scheduler thread (caller thread; bounded in time)."""
        if not wait:
            self._scheduler.terminating.set()
        self._inbox.append(QuitRequest(wait))
        self._wakeup.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(QUIT_GRACE + 5.0)
        self._scheduler.done.wait(QUIT_GRACE + 5.0)
        self._registry.close()


if (
    sys.platform == "win32"
):  # pragma: no cover - the pipe protocol relies on POSIX non-blocking pipes
    raise ImportError("taskpool's process backend needs a POSIX system")
