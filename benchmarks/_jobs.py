"""Job functions that the benchmarks send to workers.

They live at module level in an importable module so that every contender can pickle them by reference: a
worker started by forkserver, spawn, loky or a Dask nanny imports ``benchmarks._jobs`` and finds them by name,
rather than receiving a serialized copy of the code. Everything here runs in a worker process (or, for the
calibration helpers, in the harness parent), so nothing here may depend on the harness.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = [
    "array_sum",
    "calibrate_cpu_loop",
    "cpu_loop",
    "crash",
    "length",
    "make_array",
    "noop",
    "square",
    "square_chunk",
    "straggle",
    "where",
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


def crash(stamp: str | None = None) -> None:
    """Kill the worker process at once, without cleanup, the way a segfault or a hard exit would.

    Args:
        stamp: a file to write the time of the crash to (`time.monotonic`, which on Linux and macOS is one
            clock for every process), so that the runner can time what follows from the crash itself.
    """
    if stamp is not None:
        with open(stamp, "w") as f:
            f.write(repr(time.monotonic()))
    os._exit(1)


def where(sleep_s: float = 0.0, payload: object = None) -> tuple[int, float]:
    """Return the worker's pid and when the job started (`time.monotonic`), after sleeping `sleep_s`.

    The sleep keeps a worker busy long enough for a batch of these to spread over every worker; `payload`
    is ignored (a small array in it makes the worker import numpy before a timed run).
    """
    started = time.monotonic()
    if sleep_s:
        time.sleep(sleep_s)
    return os.getpid(), started


def straggle(job_s: float, stall_s: float, marker: str | None) -> None:
    """Sleep `job_s`, or `stall_s` if this is the first run of a job marked as a straggler.

    The first attempt of a marked job creates `marker` and stalls; any later copy of the same job (a backup,
    a retry) finds it and takes the normal time: a straggler is slow because of where and when it ran, not
    because of its input. Sleeping rather than spinning keeps the makespan independent of other load.
    """
    if marker is not None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            time.sleep(stall_s)
            return
    time.sleep(job_s)


def array_sum(array: Any) -> float:
    """Sum a numpy array: the argument is heavy, the result a float."""
    return float(array.sum())


def make_array(mb: int, value: float) -> Any:
    """Return a new float64 numpy array of `mb` MiB filled with `value`: the result is heavy."""
    import numpy as np

    return np.full(mb * 2**20 // 8, value, dtype=np.float64)


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
