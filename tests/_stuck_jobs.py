"""Jobs for the tests of stack capture and memory caps: each one is stuck, or holds memory, on purpose.

Module-level functions, so that every start method can import them in a worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

# What `keep_memory` allocated, kept by the worker's module after the job returned.
_kept: list[bytearray] = []


def stuck_in_here(seconds: float = 60.0) -> None:
    """Sleep (a C call that releases the GIL) inside a function whose name a stack shows."""
    time.sleep(seconds)


def calls_stuck_in_here(seconds: float = 60.0) -> None:
    stuck_in_here(seconds)


def hold_the_gil() -> int:
    """Spin in one C call that never releases the GIL (``sum`` over a range: minutes of work)."""
    return sum(range(10**12))


def keep_memory(megabytes: int) -> int:
    """Allocate ``megabytes`` MB, touch every page, and keep it after the job: returns the worker's pid."""
    block = bytearray(megabytes * 1_000_000)
    for i in range(0, len(block), 4096):
        block[i] = 1
    _kept.append(block)
    return os.getpid()


def pid() -> int:
    return os.getpid()


def ignores_the_stack_signal(seconds: float = 60.0) -> None:
    """Replace the handler of the signal that asks for a worker's stacks, then sleep: no stack, same kill."""
    import signal

    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    time.sleep(seconds)


def started_then_stuck(event: Any, seconds: float = 60.0) -> None:
    """Set ``event`` (the job runs), then sleep in `stuck_in_here`."""
    event.set()
    stuck_in_here(seconds)


def many_deep_threads(threads: int = 60, depth: int = 120) -> None:
    """Start ``threads`` threads, each asleep ``depth`` calls deep, then sleep: a dump larger than a pipe."""
    import threading

    def deep(n: int) -> None:
        if n:
            deep(n - 1)
        else:
            time.sleep(60)

    for _ in range(threads):
        threading.Thread(target=deep, args=(depth,), daemon=True).start()
    stuck_in_here()
