"""Job functions for the CLI tests, imported by the ``taskpool run`` subprocess as ``tests.integration._cli_jobs``.

Each runs in a worker of that subprocess's pool (a process, or a thread with ``--backend thread``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any


def square(x: int) -> int:
    return x * x


def add(x: int, y: int = 0) -> int:
    return x + y


def fail_on_three(x: int) -> int:
    """``x * 10``, but raises ValueError for 3."""
    if x == 3:
        raise ValueError(f"three is not allowed: {x}")
    return x * 10


def not_json(x: int) -> Any:
    """A set for odd numbers (JSON has no sets), else ``x``."""
    return {x} if x % 2 else x


def slow_identity(x: int, delay: float = 0.02) -> int:
    """``x`` after ``delay`` seconds, so that a run lasts long enough to be interrupted."""
    time.sleep(delay)
    return x


def die_on_five(x: int) -> int:
    """Kills its worker for 5 (a crash), else ``x``."""
    if x == 5:
        os._exit(3)
    return x


def flaky_once(path: str) -> str:
    """Fails the first time it is called for ``path`` (which it then creates), succeeds after."""
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("seen")
        raise ConnectionError("first attempt fails")
    return "ok"


def stall_once(path: str | None) -> str:
    """Stalls for ten minutes the first time it is called for ``path`` (which it then creates); returns at
    once after, and for None."""
    if path is not None and not os.path.exists(path):
        with open(path, "w") as f:
            f.write("seen")
        time.sleep(600)
    return "ok"


_GATE = threading.Event()


def last_finishes_first(x: int, last: int) -> int:
    """For the thread backend: input 0 waits until input ``last`` has run, so 0 finishes after every other."""
    if x == 0:
        _GATE.wait(30)
    elif x == last:
        _GATE.set()
    return x


NOT_CALLABLE = 3


def chatty(x: int) -> int:
    """Prints ``job-print-X`` (to its stdout) and returns ``x``."""
    print(f"job-print-{x}")
    return x


def chatty_below_print(x: int) -> int:
    """Writes ``job-fd-X`` to descriptor 1 and has a child process print ``job-child-X``; returns ``x``."""
    os.write(1, f"job-fd-{x}\n".encode())
    subprocess.run(
        [sys.executable, "-c", f"print('job-child-{x}')"], stdout=sys.stdout, check=True, timeout=30
    )
    return x


def length_after(text: str, delay: float = 0.01) -> int:
    """``len(text)`` after ``delay`` seconds: a slow job with a large input and a small result."""
    time.sleep(delay)
    return len(text)
