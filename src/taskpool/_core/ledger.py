"""The job ledger: a pool's state and the jobs it has taken and not finished.

Threads: caller threads admit jobs (`Ledger.admit`) and change the state (`close`, `terminate`, `break_`);
the pool's event thread retires jobs (`Ledger.finish`). ``lock`` guards the state and the registration of new
jobs, so that a job is never admitted after `close` has looked; it is never held while user code runs.
"""

from __future__ import annotations

import enum
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

from .._errors import ForkedPoolError, PoolClosedError
from .future import JobFuture
from .job import Job, JobKind, JobOptions, job_name

__all__ = ["Ledger", "PoolState"]


class PoolState(enum.Enum):
    """The life of a pool: RUNNING -> CLOSED -> (joined), or -> TERMINATED, or -> BROKEN."""

    RUNNING = "running"
    CLOSED = "closed"
    TERMINATED = "terminated"
    BROKEN = "broken"


class Ledger:
    """A pool's state, its outstanding jobs, and the bound on pending jobs (``max_pending``)."""

    def __init__(self, max_pending: int | None) -> None:
        self.lock = threading.Lock()
        self.state = PoolState.RUNNING
        #: Why the pool broke (an initializer that fails), once it has.
        self.broken: BaseException | None = None
        #: Jobs admitted and not finished, by id. Read by any thread; changed under ``lock`` or on the event
        #: thread (one dict operation at a time, each atomic).
        self.outstanding: dict[int, Job] = {}
        #: Set when the pool takes no more jobs and none is outstanding.
        self.drained = threading.Event()
        #: The pool's event thread, which completes futures: it must never wait for one of its own pool's jobs.
        self.event_thread: int | None = None
        #: The process that made the pool; in a process forked from it, the pool is unusable.
        self.owner = os.getpid()
        #: True in a process forked from the owner (set by `disown`, in the child).
        self.foreign = False
        self._ids = itertools.count(1)
        self._slots = threading.BoundedSemaphore(max_pending) if max_pending is not None else None

    def closed_error(self) -> BaseException:
        """What a submit to a pool that is not running raises."""
        if self.foreign:
            return ForkedPoolError(self.owner)
        if self.state is PoolState.BROKEN and self.broken is not None:
            return self.broken
        return PoolClosedError(self.state.value)

    def admit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: JobOptions,
        kind: JobKind,
        callback: Callable[[Any], object] | None,
        error_callback: Callable[[BaseException], object] | None,
        size: int,
    ) -> Job:
        """Make a job and its future and register it (a caller thread). The hot path of every submit.

        Blocks while ``max_pending`` jobs are pending.

        Raises:
            PoolClosedError: the pool is not running (or the pool's own error, if it broke).
        """
        if self._slots is not None:
            self._acquire_slot()
        with self.lock:
            if self.state is not PoolState.RUNNING:
                if self._slots is not None:
                    self._slots.release()
                raise self.closed_error()
            job_id = next(self._ids)
            future: JobFuture[Any] = JobFuture(job_id, opts.name or job_name(fn), self.event_thread)
            job = Job(job_id, fn, args, kwargs, opts, future, kind, callback, error_callback, size)
            self.outstanding[job_id] = job
        return job

    def has_room(self) -> bool:
        """Whether a submit now would not wait for ``max_pending`` (any thread).

        A hint only: another thread may take the room first, and the submit then waits until a job finishes.
        """
        slots = self._slots
        if slots is None:
            return True
        if not slots.acquire(blocking=False):
            return False
        slots.release()
        return True

    def refuse_wait(self, what: str) -> None:
        """Refuse a call that would block the pool's own event thread until that thread does something."""
        if threading.get_ident() == self.event_thread:
            raise RuntimeError(
                f"{what} cannot wait in a callback or event handler of the same pool: the thread waiting "
                "is the one that completes the pool's jobs. Submit without waiting (submit, apply_async, "
                "map_async) and chain the work with future.add_done_callback(...)"
            )

    def _acquire_slot(self) -> None:
        assert self._slots is not None
        if self._slots.acquire(blocking=False):
            return
        self.refuse_wait("submit with max_pending reached")
        # Wake now and then to notice a pool closed or terminated by another thread meanwhile.
        while not self._slots.acquire(timeout=0.5):
            if self.state is not PoolState.RUNNING:
                raise self.closed_error()

    def disown(self) -> None:
        """This process was forked from the owner (in the child, right after the fork): refuse every use.

        No lock is taken: the child has one thread, and a lock some parent thread held at the fork would stay
        held here for good.
        """
        self.foreign = True
        self.state = PoolState.CLOSED
        self.lock = threading.Lock()

    def check_owner(self) -> None:
        """Raise `ForkedPoolError` in a process forked from the pool's owner."""
        if self.foreign:
            raise ForkedPoolError(self.owner)

    def finish(self, job: Job) -> bool:
        """Retire ``job`` (event thread). Returns False if it was retired already."""
        if self.outstanding.pop(job.id, None) is None:
            return False
        if self._slots is not None:
            self._slots.release()
        if self.state is not PoolState.RUNNING and not self.outstanding:
            self.drained.set()
        return True

    def close(self) -> None:
        """Take no more jobs (any thread)."""
        with self.lock:
            if self.state is PoolState.RUNNING:
                self.state = PoolState.CLOSED
        if not self.outstanding:
            self.drained.set()

    def break_(self, error: BaseException) -> None:
        """The backend cannot run jobs any more (event thread): refuse new ones with ``error``."""
        with self.lock:
            self.broken = error
            if self.state is PoolState.RUNNING:
                self.state = PoolState.BROKEN
