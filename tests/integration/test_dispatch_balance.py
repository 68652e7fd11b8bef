"""Jobs of a function not timed yet are not shared out by another function's durations.

A map of tiny jobs lets a worker hold hundreds of jobs; were a burst of a new, slow function then shared by
that limit, a worker that meets a stalled job would sit on half the burst while the other idles.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

import pytest

from taskpool import TaskPool

from .. import _failure_jobs as fj
from .. import jobs

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0
BURST = 10


def _wait_for(futures: Sequence[concurrent.futures.Future[Any]], count: int) -> int:
    """Wait until ``count`` of ``futures`` are done (TIMEOUT at most); how many are done then."""
    pending = set(futures)
    while len(futures) - len(pending) < count:
        done, pending = concurrent.futures.wait(
            pending, timeout=TIMEOUT, return_when=concurrent.futures.FIRST_COMPLETED
        )
        if not done:
            break
    return len(futures) - len(pending)


def test_a_new_functions_burst_is_not_shared_out_by_tiny_jobs_durations() -> None:
    with TaskPool(2) as pool:
        assert pool.map(jobs.square, range(2000)) == [i * i for i in range(2000)]
        stall, free = pool.shared.event(), pool.shared.event()
        free.set()
        stalled = pool.submit(fj.wait_then_return, stall, -1)
        others = [pool.submit(fj.wait_then_return, free, i) for i in range(BURST)]
        # The worker that holds the stalled job holds at most one job queued behind it; the other worker
        # runs the rest meanwhile.
        finished_while_stalled = _wait_for(others, BURST - 1)
        stall.set()
        assert stalled.result(timeout=TIMEOUT) == -1
        assert [f.result(timeout=TIMEOUT) for f in others] == list(range(BURST))
        assert finished_while_stalled >= BURST - 1
