"""Job functions for the tests of per-job seeds and of checkpointed maps.

They live at module level so that workers started with spawn or forkserver can import them, and this module
imports numpy at its top, so that a worker has numpy imported before its first job (numpy's legacy global
generator is reseeded only where numpy is imported). Each runs where the job runs.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import taskpool


def draws(x: Any) -> tuple[float, float]:
    """The job's own generator's first draw and the global ``random`` module's."""
    return taskpool.job_rng().random(), random.random()


def star_draws(a: Any, b: Any) -> tuple[float, float]:
    """`draws` for starmap."""
    return draws((a, b))


def all_draws(x: Any) -> tuple[int, float, float, float, float]:
    """The seed, then draws of each generator a job can use: its own, ``random``'s, numpy's (both kinds)."""
    return (
        taskpool.job_seed(),
        taskpool.job_rng().random(),
        random.random(),
        float(taskpool.job_rng("numpy").random()),
        float(np.random.random()),
    )


def same_rng_twice(x: Any) -> bool:
    """Whether ``job_rng()`` is one object for the whole job (its draws go on, not start over)."""
    return taskpool.job_rng() is taskpool.job_rng() and taskpool.job_rng(
        "numpy"
    ) is taskpool.job_rng("numpy")


def fail_once_then_draw(marker: str) -> tuple[float, float]:
    """Fail on the first attempt (no ``marker`` file yet), then return `draws` on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        random.random()  # the failed attempt draws too: the retry must not continue its stream
        raise ConnectionError("first attempt fails")
    return draws(None)


def crash_once_then_draw(marker: str) -> tuple[float, float]:
    """Kill the worker on the first attempt (no ``marker`` file yet), then return `draws` on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed once")
        os._exit(3)
    return draws(None)


def seed_or_error(x: Any) -> str:
    """The job's seed as text, or the message of the error that reading it raised."""
    try:
        return str(taskpool.job_seed())
    except RuntimeError as exc:
        return f"error: {exc}"


def marked_square(item: tuple[str, int, int]) -> int:
    """``x * x`` for ``item = (directory, x, block_from)``, leaving a marker file per execution.

    An item with ``x >= block_from`` first blocks for a minute (it is killed with the program that runs
    the map before that): its marker is left only once it returns, so a killed execution leaves none.
    """
    directory, x, block_from = item
    if x >= block_from:
        time.sleep(60)  # stands for a long job; the test kills the program long before
    fd, _ = tempfile.mkstemp(prefix=f"{x}-", dir=directory)
    os.close(fd)
    return x * x


def marked_cube(item: tuple[str, int, int]) -> int:
    """Another function than `marked_square`: a checkpoint of one is not the other's."""
    return marked_square(item) * item[1]


def fail_on(item: tuple[str, int, int]) -> int:
    """`marked_square`, but item ``x == block_from`` raises instead (and leaves a marker first)."""
    directory, x, bad = item
    if x == bad:
        fd, _ = tempfile.mkstemp(prefix=f"{x}-", dir=directory)
        os.close(fd)
        raise ValueError(f"item {x} fails")
    return marked_square((directory, x, 1 << 30))


def executions(directory: str) -> dict[int, int]:
    """How many times each item ran, from the markers the jobs left (the test's process)."""
    counts: dict[int, int] = {}
    for name in os.listdir(directory):
        item = int(name.partition("-")[0])
        counts[item] = counts.get(item, 0) + 1
    return counts
