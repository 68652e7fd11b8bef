"""A pool's life after it is made: closing, joining, terminating, the context managers, and what happens at
interpreter exit and in a forked child.

`Lifecycle` holds the methods callers use to end a pool (caller threads). The exit hook, which stops pools still
open at interpreter exit so that no worker outlives the program, runs in the main thread.

The exit hook registers when the first pool starts (importing taskpool has no side effects) and runs in the
main thread at interpreter exit; so does a fork hook, which runs in the child of any ``os.fork()`` and disowns
the parent's pools there, so that exit hooks act only in the process that made the pool.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.process
import weakref
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .._core.ledger import Ledger, PoolState
from .._runtime.hooks import register_once
from .active import enter_pool, exit_pool

if TYPE_CHECKING:
    from .._core.backend import Backend
    from .._core.event_thread import EventThread
    from .._core.outcomes import Outcomes
    from .._shared import SharedState
    from .._timeline import Recorder
    from .pool import TaskPool

__all__ = ["Lifecycle", "forget_pool", "track_pool"]

log = logging.getLogger("taskpool")

_live_pools: weakref.WeakSet[TaskPool] = weakref.WeakSet()


def _terminate_live_pools() -> None:
    """At interpreter exit: stop every pool still open, so no worker outlives the program (atexit)."""
    for pool in list(_live_pools):
        try:
            pool.terminate()
        except Exception:
            log.debug("error while stopping a pool at exit", exc_info=True)


def track_pool(pool: TaskPool) -> None:
    """Remember an open pool, to stop it at exit if nobody else does (the pool's constructor)."""
    _live_pools.add(pool)
    register_once("pools", at_exit=_terminate_live_pools, after_fork_in_child=_after_fork_in_child)


def _after_fork_in_child() -> None:
    """In a process just forked from one with pools (``os.fork()`` in user code, or a worker forked by
    multiprocessing): the pools are the parent's. Make them refuse every use, and make sure that this
    process's exit touches none of the parent's workers, threads or shared state.
    """
    for pool in list(_live_pools):
        pool._disown()
    _live_pools.clear()
    # multiprocessing's own exit handler terminates the daemonic children it knows of; after a plain fork its
    # list still names the parent's workers and manager, which a child must never signal.
    children: set[Any] = getattr(multiprocessing.process, "_children", set())
    for process in list(children):
        if str(getattr(process, "name", "")).startswith(("taskpool-", "SharedManager-")):
            children.discard(process)


def forget_pool(pool: TaskPool) -> None:
    """The pool has shut down: nothing left to stop at exit."""
    _live_pools.discard(pool)


L = TypeVar("L", bound="Lifecycle")


class Lifecycle:
    """The methods that end a pool: `close`, `join`, `terminate`, `shutdown`, and ``with``/``async with``."""

    _ledger: Ledger
    _backend: Backend
    _events: EventThread
    _outcomes: Outcomes
    _recorder: Recorder | None
    _shared: SharedState | None
    _joined: bool

    def close(self) -> None:
        """Take no more jobs; those submitted still run. Call `join` next to wait for them."""
        self._ledger.check_owner()
        self._ledger.close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has finished and the workers have exited.

        Returns False if ``timeout`` seconds passed first (the pool is then still finishing).

        Raises:
            ValueError: the pool is still running: call `close` (or `terminate`) first.
        """
        self._ledger.check_owner()
        if self._ledger.state is PoolState.RUNNING:
            raise ValueError("join() needs close() or terminate() first: the pool still takes jobs")
        self._ledger.refuse_wait("join()")
        if self._joined:
            return True
        if not self._ledger.drained.wait(timeout):
            return False
        self._shutdown(wait=True)
        return True

    def terminate(self) -> None:
        """Stop now: kill the workers, cancel every job that has not finished. Bounded in time."""
        ledger = self._ledger
        ledger.check_owner()
        with ledger.lock:
            if self._joined or ledger.state is PoolState.TERMINATED:
                return
            ledger.state = PoolState.TERMINATED
        # Ahead of whatever backlog the event thread has: every unfinished future is cancelled within
        # moments, and handlers see nothing after this (see Outcomes.halt).
        self._outcomes.halt()
        if self._recorder is not None:
            self._recorder.halt()  # what was running is drawn as stopped here
        self._events.call_urgent(self._outcomes.cancel_all)
        self._backend.shutdown(wait=False)
        self._shutdown(wait=False)

    def _shutdown(self, wait: bool) -> None:
        with self._ledger.lock:
            if self._joined:
                return
            self._joined = True
        if wait:
            self._backend.shutdown(wait=True)
        self._events.stop(10.0)
        if self._shared is not None:
            self._shared.shutdown()
        forget_pool(cast("TaskPool", self))

    def _disown(self) -> None:
        """In a process forked from the pool's owner (the fork hook): every later use raises ForkedPoolError."""
        self._ledger.disown()
        self._joined = True  # nothing to shut down here: the workers and threads are the parent's
        if self._shared is not None:
            self._shared._disown(self._ledger.owner)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the pool, as `concurrent.futures.Executor.shutdown` does (the caller's thread).

        Args:
            wait: wait for every job to finish and the workers to exit (`close` then `join`).
            cancel_futures: first cancel every job that has not started.
        """
        if cancel_futures:
            self._cancel_not_begun()
        self.close()
        if wait:
            self.join()

    def _cancel_not_begun(self) -> None:
        """Cancel every job that has not begun, those handed to a worker included (the caller's thread).

        Futures of jobs still waiting are cancelled here; the backend then makes its workers skip the jobs
        they hold ahead of the one they run, whose futures are already running. Running jobs run on.
        """
        outstanding = list(self._ledger.outstanding.values())
        for job in outstanding:
            job.future.cancel()
        if outstanding:
            self._backend.withdraw(max(job.id for job in outstanding))

    async def __aenter__(self: L) -> L:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        """Leave ``async with``: as ``with``, but the wait for the jobs does not block the event loop."""
        import asyncio

        exit_pool(cast("TaskPool", self))
        if self._ledger.foreign:
            return
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # cancelled, Ctrl-C or SystemExit: out now
            return
        if exc_type is not None:
            self._cancel_not_begun()
        self.close()
        await asyncio.to_thread(self.join)

    def __enter__(self: L) -> L:
        enter_pool(cast("TaskPool", self))  # inside the block, @task functions submit to this pool
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        exit_pool(cast("TaskPool", self))
        if self._ledger.foreign:
            return  # a forked child leaving the parent's block: nothing of the pool is this process's
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # Ctrl-C or SystemExit: the user wants out now, not after the jobs finish
            return
        if exc_type is not None:
            # The block failed: its results will not be read, so what has not begun is not worth running.
            # Running jobs finish (a job is never cut short unasked), then the exception goes on.
            self._cancel_not_begun()
        self.close()
        self.join()

    def __del__(self) -> None:
        ledger = getattr(self, "_ledger", None)
        if ledger is not None and ledger.state is PoolState.RUNNING and not self._joined:
            with contextlib.suppress(Exception):
                self.terminate()
