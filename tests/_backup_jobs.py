"""Jobs for the tests of backup copies: each behaves one way on its first copy and another on the copies after.

The first copy of a job creates its marker file (atomically: ``O_EXCL``); a copy that finds the marker there
already is a later copy (a backup, or a retry). Module level, so workers import them.
"""

from __future__ import annotations

import contextlib
import os
import time


def _first_copy(marker: str) -> bool:
    """Whether this is the first copy to run with ``marker`` (it creates the file)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def copies(
    marker: str,
    value: int,
    first: float = 30.0,
    later: float = 0.0,
    first_fails: bool = False,
    later_fails: bool = False,
) -> int:
    """Sleep ``first`` seconds on the first copy and ``later`` on the others; then fail or return ``value``."""
    is_first = _first_copy(marker)
    time.sleep(first if is_first else later)
    if first_fails if is_first else later_fails:
        raise ValueError("first copy" if is_first else "later copy")
    return value


def stall_stubbornly(marker: str, value: int) -> int:
    """Return ``value``; the first copy stalls for 30 s, and swallows whatever is raised into it meanwhile."""
    if _first_copy(marker):
        end = time.monotonic() + 30.0
        while time.monotonic() < end:
            with contextlib.suppress(
                BaseException
            ):  # a job that will not be interrupted, on purpose
                time.sleep(max(0.0, end - time.monotonic()))
    return value


def sleep_for_pid(seconds: float) -> int:
    """Sleep ``seconds``, then return the worker's pid."""
    time.sleep(seconds)
    return os.getpid()


def seed_copies(marker: str) -> int:
    """Return the job's seed; the first copy writes it to ``marker + ".seed"`` and stalls for 30 s first."""
    from taskpool import job_seed

    seed = job_seed()
    if _first_copy(marker):
        with open(marker + ".seed", "w") as f:
            f.write(str(seed))
        time.sleep(30.0)
    return seed


def stall_marked(item: tuple[str, int]) -> int:
    """A map item ``(marker, value)``: an empty marker never stalls; the first copy of a marked one does."""
    marker, value = item
    if marker and _first_copy(marker):
        time.sleep(30.0)
    return value
