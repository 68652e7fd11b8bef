"""Job functions that the benchmarks send to workers.

They live at module level in an importable module so that every contender can pickle them by reference: a
worker started by forkserver, spawn, loky or a Dask nanny imports ``benchmarks._jobs`` and finds them by name,
rather than receiving a serialized copy of the code. Everything here runs in a worker process (or, for the
calibration helpers, in the harness parent), so nothing here may depend on the harness.
"""

from __future__ import annotations

import os
import time

__all__ = [
    "calibrate_cpu_loop",
    "cpu_loop",
    "crash",
    "length",
    "noop",
    "square",
    "square_chunk",
]


def noop() -> None:
    """Do nothing: a job whose whole cost is the pool's overhead."""


def square(x: int) -> int:
    """A trivial one-argument function for map-style scenarios."""
    return x * x


def square_chunk(xs: list[int]) -> list[int]:
    """`square` over a list, for a contender (Dask) whose API has no chunked map of its own."""
    return [x * x for x in xs]


def length(data: bytes) -> int:
    """Return the size of a (large) argument, so only the argument, not the result, is heavy."""
    return len(data)


def cpu_loop(n: int) -> int:
    """Spin a pure-Python loop of `n` steps: CPU-bound and holding the GIL throughout."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def crash() -> None:
    """Kill the worker process at once, without cleanup, the way a segfault or a hard exit would."""
    os._exit(1)


def calibrate_cpu_loop(target_s: float) -> int:
    """Return the `cpu_loop` step count that takes about `target_s` seconds here (runs in the harness parent).

    The count doubles until one run lasts long enough (50 ms) to time reliably, then scales linearly: the
    loop's cost per step is constant.
    """
    n = 10_000
    while True:
        t0 = time.perf_counter()
        cpu_loop(n)
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.05:
            return max(1, int(n * target_s / elapsed))
        n *= 2
