"""Process hooks registered once per process: at interpreter exit, and in the child of every fork.

Runs in whichever thread first needs a hook (a pool's constructor, the scheduler thread starting a worker).
Each caller names its hooks; the second registration under a name does nothing, so a module can ask every
time it makes what the hooks clean up, without a flag and a lock of its own. A fork's child inherits the
registrations (Python keeps both kinds of hook across ``fork``), so it must not register them again: the
names registered are inherited with them.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable

__all__ = ["register_once"]

_lock = threading.Lock()
_registered: set[str] = set()


def _new_lock() -> None:
    global _lock
    _lock = (
        threading.Lock()
    )  # another thread may have held it at the fork: it never lets go in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock)


def register_once(
    name: str,
    *,
    at_exit: Callable[[], object] | None = None,
    after_fork_in_child: Callable[[], object] | None = None,
) -> None:
    """Register ``at_exit`` (``atexit``) and ``after_fork_in_child`` (``os.register_at_fork``, where the
    platform has it) unless hooks named ``name`` are registered already in this process."""
    with _lock:
        if name in _registered:
            return
        _registered.add(name)
        if at_exit is not None:
            atexit.register(at_exit)
        if after_fork_in_child is not None and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_fork_in_child)
