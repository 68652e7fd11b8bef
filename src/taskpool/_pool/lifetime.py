"""Pools that are open, and stopping them at interpreter exit so that no worker outlives the program.

The exit hook registers when the first pool starts (importing taskpool has no side effects) and runs in the
main thread at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import TYPE_CHECKING

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
            _exit_hook_registered = True


def track_pool(pool: TaskPool) -> None:
    """Remember an open pool, to stop it at exit if nobody else does (the pool's constructor)."""
    _live_pools.add(pool)
    _register_exit_hook()


def forget_pool(pool: TaskPool) -> None:
    """The pool has shut down: nothing left to stop at exit."""
    _live_pools.discard(pool)
