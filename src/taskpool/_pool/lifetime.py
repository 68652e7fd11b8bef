"""Pools that are open, and stopping them at interpreter exit so that no worker outlives the program.

The exit hook registers when the first pool starts (importing taskpool has no side effects) and runs in the
main thread at interpreter exit; so does a fork hook, which runs in the child of any ``os.fork()`` and disowns
the parent's pools there, so that exit hooks act only in the process that made the pool.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.process
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import TaskPool

__all__ = ["forget_pool", "track_pool"]

log = logging.getLogger("taskpool")

_live_pools: weakref.WeakSet[TaskPool] = weakref.WeakSet()
_exit_hook_lock = threading.Lock()
_exit_hook_registered = False


def _terminate_live_pools() -> None:
    """At interpreter exit: stop every pool still open, so no worker outlives the program (atexit)."""
    for pool in list(_live_pools):
        try:
            pool.terminate()
        except Exception:
            log.debug("error while stopping a pool at exit", exc_info=True)


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            atexit.register(_terminate_live_pools)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _exit_hook_registered = True


def track_pool(pool: TaskPool) -> None:
    """Remember an open pool, to stop it at exit if nobody else does (the pool's constructor)."""
    _live_pools.add(pool)
    _register_exit_hook()


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
