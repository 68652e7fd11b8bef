"""The soak test: a thousand jobs that succeed, raise, crash their worker or time out, with and without retries.

Every job must be accounted for exactly once (its future completes once: one done-callback, one terminal
event), good jobs must return the right values, failures must carry the right error and attempt count, and
nothing may hang. The mix is drawn from a seeded generator, so a failure reproduces.

Then ten thousand tiny jobs with twenty crashes among them, counted by the lines they append to a file: a
crash must not make a job that finished run again.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from taskpool import Event, JobFuture, JobTimeoutError, Retry, TaskPool, WorkerCrashedError

from .. import _failure_jobs as fj
from .. import jobs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

JOBS = 1000
SEED = 20240611
# Per-job timeout of the jobs that hang: short, so the few of them cost little.
HANG_TIMEOUT = 0.2
# How long the whole soak may take to settle once everything is submitted.
SETTLE = 90.0

RETRY = Retry(attempts=2, on=(ValueError,), on_crash=True, on_timeout=True)
EXPECTED_ERROR: dict[str, type[BaseException]] = {
    "raise": ValueError,
    "crash": WorkerCrashedError,
    "hang": JobTimeoutError,
}


def draw_kinds(n: int) -> list[str]:
    """The job mix: mostly fine, some raise, a few crash, very few hang (each hang costs a timeout)."""
    rng = random.Random(SEED)
    kinds = rng.choices(["ok", "raise", "crash"], weights=[87, 10, 3], k=n)
    for i in rng.sample(range(n), 6):
        kinds[i] = "hang"
    return kinds


def test_soak_every_job_accounted_for_once() -> None:
    kinds = draw_kinds(JOBS)
    done_calls: collections.Counter[int] = collections.Counter()
    terminal: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def on_done(future: cf.Future[Any]) -> None:
        with (
            lock
        ):  # done-callbacks run on the event thread, or in the submitting thread if already done
            done_calls[future.job_id] += 1  # type: ignore[attr-defined]

    def on_terminal(event: Event) -> None:
        assert event.job_id is not None
        terminal[event.job_id] += 1

    t0 = time.monotonic()
    with TaskPool(2) as pool:
        pool.on("job_succeeded", on_terminal)
        pool.on("job_failed", on_terminal)
        plain = pool.options()
        retried = pool.options(retry=RETRY)
        futures: list[tuple[str, bool, JobFuture[int]]] = []
        for i, kind in enumerate(kinds):
            with_retry = i % 2 == 1
            view = retried if with_retry else plain
            if kind == "hang":
                view = view.options(timeout=HANG_TIMEOUT)
            future = view.submit(fj.soak_job, kind, i)
            future.add_done_callback(on_done)
            futures.append((kind, with_retry, future))
        _, not_done = cf.wait([f for _, _, f in futures], timeout=SETTLE)
        assert not not_done, f"{len(not_done)} jobs never finished"
        # The pool is whole after all that: two workers, right answers.
        assert pool.map(jobs.square, range(50), chunksize=5) == [x * x for x in range(50)]
    elapsed = time.monotonic() - t0

    outcomes: collections.Counter[str] = collections.Counter()
    for i, (kind, with_retry, future) in enumerate(futures):
        assert not future.cancelled()
        expected_attempts = 2 if with_retry and kind != "ok" else 1
        assert future.attempts == expected_attempts, (i, kind, with_retry)
        if kind == "ok":
            assert future.result(timeout=0) == i * 2
        else:
            error = future.exception(timeout=0)
            assert isinstance(error, EXPECTED_ERROR[kind]), (i, kind, error)
        outcomes[kind] += 1
    ids = [f.job_id for _, _, f in futures]
    assert done_calls == collections.Counter(ids), "a future completed more or less than once"
    soak_terminal = collections.Counter({k: v for k, v in terminal.items() if k in done_calls})
    assert soak_terminal == collections.Counter(ids), (
        "a job had more or less than one terminal event"
    )
    assert sum(terminal.values()) == JOBS + 10  # and the ten chunks of the final map
    assert outcomes["crash"] >= 10
    assert outcomes["hang"] == 6
    assert elapsed < SETTLE


# Tiny jobs that each append their id to a file; every CRASH_EVERY-th ends its worker after appending.
TINY_JOBS, CRASH_EVERY = 10_000, 500


def test_crashes_rerun_no_finished_job(tmp_path: Path) -> None:
    """Ten thousand tiny jobs, twenty of which crash their worker: no job that finished runs again, and every
    crash costs at most one extra execution (its own job's, with a retry; none here)."""
    path = str(tmp_path / "runs")
    crashes = TINY_JOBS // CRASH_EVERY
    with TaskPool(2) as pool:
        futures = [pool.submit(fj.record_or_exit, path, i, CRASH_EVERY) for i in range(TINY_JOBS)]
        _, not_done = cf.wait(futures, timeout=SETTLE)
        assert not not_done, f"{len(not_done)} jobs never finished"
    crashed = [i for i, f in enumerate(futures) if f.exception(timeout=0) is not None]
    assert crashed == [i for i in range(TINY_JOBS) if i % CRASH_EVERY == CRASH_EVERY - 1]
    assert all(isinstance(futures[i].exception(timeout=0), WorkerCrashedError) for i in crashed)
    runs = collections.Counter(int(x) for x in Path(path).read_text().split())
    assert set(runs) == set(range(TINY_JOBS))
    extra = sum(runs.values()) - TINY_JOBS
    assert extra <= crashes, f"{extra} extra executions for {crashes} crashes"
    assert max(runs.values()) == 1, "a job ran twice"
