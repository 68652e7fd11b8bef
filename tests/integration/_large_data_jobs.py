"""Job functions for test_large_data.py: module level, so that spawn and forkserver workers import them. Each
runs in a worker process. numpy is imported inside the jobs that need it, so that a worker that never ran one
has not imported it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def echo(value: Any) -> Any:
    return value


def scribble(array: Any) -> tuple[bool, float]:
    """Write into an argument array; return whether it was writable and its sum after the write."""
    writable = bool(array.flags.writeable)
    array[...] = 1
    return writable, float(array.sum())


def make_array(n: int, value: float) -> Any:
    import numpy as np

    return np.full(n, value)


def crash_with(array: Any) -> None:
    """Die holding a mapped argument."""
    os._exit(3)


def hang_with(array: Any, started: str) -> None:
    """Block (a timeout ends it) holding a mapped argument; tell the test it started."""
    Path(started).write_text(str(os.getpid()))
    time.sleep(120)


def numpy_imported() -> bool:
    return "numpy" in sys.modules


def use_shared(shared: dict[str, Any], i: int) -> tuple[int, int, float, bool]:
    """Read a shared object: which object it is here, in which worker, an element, and whether it is writable."""
    weights = shared["weights"]
    return id(shared), os.getpid(), float(weights[i]), bool(weights.flags.writeable)


def fill_row(table: Any, row: int) -> None:
    table[row, :] = row


def worker_pid() -> int:
    return os.getpid()


def wait_for(path: str) -> None:
    """Hold the worker until the test creates ``path`` (bounded)."""
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(
            0.005
        )  # polls the file the test writes: the test's handshake, not a guess at timing


def total(array: Any) -> float:
    return float(array.sum())


def scribble_then_crash(array: Any, marker: str) -> float:
    """The first attempt writes into its argument and dies; the next returns the argument's sum."""
    if not Path(marker).exists():
        Path(marker).write_text("crashed once")
        array[...] = 7
        os._exit(1)
    return float(array.sum())
