"""Job functions that start processes of their own, for the tests of what outlives what.

They live at module level so that workers started with spawn or forkserver can import them; each runs in a
worker process. A job's background process is a shell's ``sleep &``: it inherits every inheritable file
descriptor the worker has (under spawn, the pipe whose end of file tells the parent the worker ended), and its
pid is written to a file, or printed, before the job goes on.
"""

from __future__ import annotations

import os
import shlex
import time
from typing import Any

# Seconds a job "that never returns" sleeps: far longer than any test waits for it.
FOREVER = 600


def start_grandchild(path: str, seconds: int = 30) -> int:
    """Start ``sleep seconds`` in the background, write its pid to the file at ``path``; returns the pid."""
    quoted = shlex.quote(path)
    os.system(f"sleep {seconds} </dev/null >/dev/null 2>&1 & echo $! > {quoted}")
    with open(path) as f:
        return int(f.read())


def grandchild_then_crash(path: str) -> None:
    """Start a background process (which holds the worker's pipes), then end the worker at once."""
    start_grandchild(path, 20)
    os._exit(3)


def grandchild_then_hang(path: str, started: Any = None) -> None:
    """Start a background process, set ``started`` (a shared event) if given, then run past any timeout."""
    start_grandchild(path)
    if started is not None:
        started.set()
    time.sleep(FOREVER)


def print_grandchild_then_hang() -> None:
    """Start a background process, print ``grandchild <pid>`` to the worker's own stdout, never return."""
    os.system(f"sleep {FOREVER} </dev/null >/dev/null 2>&1 & echo grandchild $!")
    time.sleep(FOREVER)


def hang() -> None:
    """Never return (within any test's time)."""
    time.sleep(FOREVER)
