"""Module-level job functions for the joblib backend tests (workers import them by reference)."""

from __future__ import annotations

import os
import time

import joblib


def square(x: int) -> int:
    return x * x


def die_at(x: int, at: int) -> int:
    """Kill the worker that runs item ``at``; return the others squared."""
    if x == at:
        os._exit(3)
    return x * x


def die_once(x: int, marker: str) -> int:
    """Kill the worker the first time it runs (``marker`` does not exist yet); return ``x`` squared after."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(3)
    return x * x


def stall(seconds: float) -> float:
    """Run past the backend's timeout (the test waits for the timeout, not for this)."""
    time.sleep(seconds)
    return seconds


def inner_sum(n: int) -> int:
    """A nested loop on joblib's default nested backend (threads, inside a worker)."""
    return sum(joblib.Parallel(n_jobs=2)(joblib.delayed(square)(i) for i in range(n)))


def inner_taskpool_sum(n: int) -> int:
    """A nested loop that asks for the taskpool backend by name inside a worker: it runs sequentially."""
    with joblib.parallel_config(backend="taskpool", n_jobs=2):
        return sum(joblib.Parallel()(joblib.delayed(square)(i) for i in range(n)))
