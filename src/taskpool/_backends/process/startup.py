"""What a failure to start a worker process means, and what the pool does about it.

- A main module that starts a pool when it is imported: spawn and forkserver start a worker by importing the
  parent's main module again (as ``__mp_main__``), so a pool made at import time, outside an
  ``if __name__ == "__main__":`` block, would start in every worker. `refuse_while_main_is_imported` runs
  where a process pool is made; in one of our workers still importing the main module it ends the process
  at once with `MAIN_GUARD_EXIT`, quietly, and the parent breaks the pool with one `WorkerStartError` that
  names the guard (rather than a traceback from every worker it tried).
- The system refusing a new process for a moment (too many open files, no memory, a process limit): the
  scheduler tries again after a growing pause (`SpawnBackoff`) and breaks the pool only after
  `SPAWN_ATTEMPTS` failures in a row, with a `WorkerStartError` that says what failed.
- Anything else that makes starting a worker raise (an initializer that does not pickle, say) breaks the
  pool at once, with a `WorkerStartError` that says what was raised.
- Workers that end before they are ready (`StartupFailures`): `STARTUP_FAILURES` in a row break the pool,
  with an `InitializerError` naming the initializer where there is one (it is what ran), else a
  `WorkerStartError`, instead of respawning them forever.

- A worker past ``max_memory_per_worker`` before its first job (after its ``preload`` modules and initializer):
  every worker would be replaced after each job, so the pool breaks at once with a `WorkerStartError` that
  says how much a fresh worker uses (`memory_floor_error`).
- A ``preload`` module that does not exist: under forkserver the template reports it (see `templates`);
  under fork and spawn `check_importable` finds a missing top-level module in the pool's constructor, and a
  worker that fails to import one fails as an initializer does.

Runs in the scheduler thread, except `refuse_while_main_is_imported` and `check_importable`, which run in the
thread that makes a pool (in the parent, or in a worker importing the main module).
"""

from __future__ import annotations

import errno
import importlib.util
import multiprocessing
import os
from collections.abc import Callable
from typing import TypeVar

from ..._errors import InitializerError, TaskpoolError, WorkerStartError
from .memory import format_size

__all__ = [
    "MAIN_GUARD_EXIT",
    "SPAWN_ATTEMPTS",
    "STARTUP_FAILURES",
    "SpawnBackoff",
    "StartupFailures",
    "check_importable",
    "main_guard_error",
    "memory_floor_error",
    "refuse_while_main_is_imported",
    "spawn_error",
]

W = TypeVar("W")

# Workers that die before they report ready, in a row, before the pool gives up instead of respawning forever.
STARTUP_FAILURES = 3
#: The exit code of a worker that found the main module starting a pool as the worker imported it.
MAIN_GUARD_EXIT = 86
#: Failures in a row to start a worker process, on errors that may pass, before the pool gives up. With the
#: pauses below the pool gives up after about 1.5 s: more would wait out a longer shortage; fewer would
#: report a lasting one sooner.
SPAWN_ATTEMPTS = 6
# The pause after the first failure, doubled after each one, up to the last.
FIRST_PAUSE, LAST_PAUSE = 0.05, 1.0
# Errors from fork, pipe or exec that say the system is short of something for now.
_TRANSIENT = frozenset((errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM))
_WORKER_NAME = "taskpool-worker-"

_GUARD = (
    "the main module starts a pool when it is imported. Worker processes started with spawn or forkserver "
    "import the main module again, so they would start pools of their own. Put the code that starts the "
    'pool under `if __name__ == "__main__":`'
)


def main_guard_error() -> WorkerStartError:
    return WorkerStartError(_GUARD)


def memory_floor_error(used: int, limit: int) -> WorkerStartError:
    """The error of a worker that was past ``limit`` bytes of private memory (``used``) before its first job."""
    return WorkerStartError(
        f"a fresh worker uses {format_size(used)} of private memory before its first job (after its preload "
        f"modules and initializer), more than max_memory_per_worker={format_size(limit)}, so every worker "
        "would be replaced after each job; give a limit well above what a worker needs to start"
    )


def refuse_while_main_is_imported() -> None:
    """Refuse a process pool made while this process imports the main module to start as a worker.

    Raises:
        TaskpoolError: in a process of someone else's that imports the main module to start.
    """
    process = multiprocessing.current_process()
    if not getattr(process, "_inheriting", False):  # what multiprocessing sets for that import
        return
    if process.name.startswith(_WORKER_NAME):
        # One of our workers: end quietly; the parent says what went wrong, once.
        os._exit(MAIN_GUARD_EXIT)
    raise TaskpoolError(_GUARD)


def check_importable(preload: tuple[str, ...]) -> None:
    """Refuse a ``preload`` module whose top-level package cannot be found (imports nothing).

    Raises:
        ModuleNotFoundError: naming the module, before any worker starts.
    """
    for name in preload:
        top = name.partition(".")[0]
        if importlib.util.find_spec(top) is None:
            raise ModuleNotFoundError(
                f"preload: no module named {top!r} (from {name!r}); check the name and that it is installed",
                name=top,
            )


def spawn_error(exc: BaseException, failures: int) -> WorkerStartError:
    """The error that breaks the pool after ``failures`` failures in a row to start a worker, the last ``exc``."""
    what = f"{type(exc).__name__}: {exc}"
    if failures > 1:
        return WorkerStartError(
            f"starting a worker process failed {failures} times in a row, last with {what}; the "
            "system may be short of file descriptors, memory or processes (see ulimit -n and -u)"
        )
    return WorkerStartError(f"starting a worker process raised {what}")


class SpawnBackoff:
    """Failures in a row to start a worker process, and when to try again (scheduler thread only)."""

    __slots__ = ("failures", "not_before")

    def __init__(self) -> None:
        self.failures = 0
        #: The `time.monotonic` before which no worker is started.
        self.not_before = 0.0

    def attempt(
        self, spawn: Callable[[], W], now: float
    ) -> tuple[W | None, WorkerStartError | None]:
        """Start a worker with ``spawn`` unless it is too soon after a failure: ``(worker, None)``; ``(None,
        None)`` when none starts now (the scheduler tries again later); ``(None, error)`` to break the pool.
        """
        if now < self.not_before:
            return None, None
        try:
            worker = spawn()
        except (
            Exception
        ) as exc:  # the system is short of something, or the initializer does not pickle
            return None, self.failed(exc, now)
        self.started()
        return worker, None

    def failed(self, exc: BaseException, now: float) -> WorkerStartError | None:
        """Starting a worker raised ``exc``: the error to break the pool with, or None to try again later."""
        self.failures += 1
        if getattr(exc, "errno", None) not in _TRANSIENT or self.failures >= SPAWN_ATTEMPTS:
            return spawn_error(exc, self.failures)
        self.not_before = now + min(LAST_PAUSE, FIRST_PAUSE * 2 ** (self.failures - 1))
        return None

    def started(self) -> None:
        """A worker process started: the run of failures is over."""
        self.failures = 0
        self.not_before = 0.0


class StartupFailures:
    """Workers that ended before they were ready, in a row (scheduler thread only)."""

    __slots__ = ("_count", "_initializer")

    def __init__(self, initializer: str | None) -> None:
        self._initializer = initializer
        self._count = 0

    def ready(self) -> None:
        """A worker reported ready: the run of failures is over."""
        self._count = 0

    def exited(self, exitcode: int | None) -> InitializerError | None:
        """A worker ended before it was ready (not killed on purpose): the error to break the pool with, if
        that happened `STARTUP_FAILURES` times in a row, or at once if the main module has no guard."""
        if exitcode == MAIN_GUARD_EXIT:
            return main_guard_error()
        self._count += 1
        if self._count < STARTUP_FAILURES:
            return None
        reason = (
            f"{STARTUP_FAILURES} worker processes in a row exited with code {exitcode} before they "
            "were ready"
        )
        if self._initializer is not None:  # it is what runs before a worker is ready
            return InitializerError(reason, self._initializer)
        return WorkerStartError(reason)
