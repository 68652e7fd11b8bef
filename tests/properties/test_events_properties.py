"""Hypothesis: for any list of jobs (values, errors, crashes, retries), the events each job gets follow the
rules: submitted < started < one terminal event, one started per attempt, one job_retrying per retry, and the
terminal event matches the future's outcome. One pool per test; the examples run against it.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskpool import Event, JobFuture, Retry, TaskPool, WorkerCrashedError

from .. import _task_jobs as jobs

TIMEOUT = 30.0
KINDS = (
    "job_submitted",
    "job_started",
    "job_succeeded",
    "job_failed",
    "job_retrying",
    "job_cancelled",
)

# (outcome, value): "retry" fails ``value % 2 + 1`` times, then returns ``value``.
Job = tuple[str, int]


def job_lists(crashes: bool) -> st.SearchStrategy[list[Job]]:
    outcomes = ["value", "error", "retry", *(["crash"] if crashes else [])]
    # At most two crashes an example: each costs a worker restart, and the suite must stay fast. No retries
    # beside a crash: a worker that dies may take outcomes of jobs it finished but had not sent yet with it,
    # and those jobs run again (at least once), so the file-counted failures of a retrying job come out short.
    return st.lists(
        st.tuples(st.sampled_from(outcomes), st.integers(0, 50)), min_size=1, max_size=8
    ).filter(
        lambda js: (
            sum(k == "crash" for k, _ in js) <= 2 and not {"crash", "retry"} <= {k for k, _ in js}
        )
    )


class Recorder:
    """Every job event, grouped by job id (event thread appends, the test reads after the futures are done)."""

    def __init__(self, pool: TaskPool) -> None:
        self.by_job: dict[int, list[Event]] = defaultdict(list)
        self.terminal_order: list[int] = []
        self.threads: set[str] = set()
        for kind in KINDS:
            pool.on(kind, self)  # type: ignore[arg-type]

    def __call__(self, event: Event) -> None:
        assert event.job_id is not None
        self.by_job[event.job_id].append(event)
        self.threads.add(threading.current_thread().name)
        if event.kind in ("job_succeeded", "job_failed"):
            self.terminal_order.append(event.job_id)


def run_and_check(
    pool: TaskPool, rec: Recorder, job_list: list[Job], workdir: Path, ids: Any
) -> None:
    rec.by_job.clear()
    rec.terminal_order.clear()
    retrying = pool.options(retry=Retry(attempts=3, on=(ValueError,)))
    futures: list[JobFuture[int]] = []
    for kind, value in job_list:
        if kind == "retry":
            futures.append(
                retrying.submit(
                    jobs.retry_then, str(workdir / f"m{next(ids)}"), value % 2 + 1, value
                )
            )
        else:
            futures.append(pool.submit(jobs.outcome, kind, value))
    for (kind, value), future in zip(job_list, futures, strict=False):
        error = future.exception(TIMEOUT)
        events = rec.by_job[future.job_id]
        names = [e.kind for e in events]
        fails = value % 2 + 1 if kind == "retry" else 0
        if kind in ("value", "retry"):
            assert error is None
            assert future.result() == value
            terminal = "job_succeeded"
        else:
            assert isinstance(error, ValueError if kind == "error" else WorkerCrashedError)
            terminal = "job_failed"
        starts = [e.attempt for e in events if e.kind == "job_started"]
        if "crash" in {k for k, _ in job_list}:
            # A job that finished on a worker which another job then crashed, before the finished job's
            # outcome was sent, runs again elsewhere (its outcome died with the process): it is started twice
            # in the same attempt. Documented in docs/failures.md; collapse those repeats here.
            names = [
                n for i, n in enumerate(names) if not (n == "job_started" and names[i - 1] == n)
            ]
            starts = [a for i, a in enumerate(starts) if i == 0 or starts[i - 1] != a]
        assert names == [
            "job_submitted",
            *(["job_started", "job_retrying"] * fails),
            "job_started",
            terminal,
        ]
        assert future.attempts == fails + 1
        assert starts == list(range(1, fails + 2))
        assert {e.name for e in events} == {future.name}
        if terminal == "job_succeeded":
            assert events[-1].result == value
        else:
            assert events[-1].exception is error
    assert rec.threads <= {"taskpool-events"}
    if pool.workers == 1 and not {"retry", "crash"} & {kind for kind, _ in job_list}:
        # One worker runs jobs in submission order. Not across a crash: a job whose outcome died unsent with
        # the worker runs again after the crashed one. Nor across retries, which go to the back of the queue.
        assert rec.terminal_order == [f.job_id for f in futures]


@pytest.mark.parametrize("workers", [1, 2])
def test_process_backend_events_follow_the_rules(workers: int) -> None:
    ids = itertools.count()
    # fork: a crashed worker is replaced in milliseconds (forkserver and spawn take about half a second, and
    # the start methods are covered by the integration tests).
    with tempfile.TemporaryDirectory() as tmp, TaskPool(workers, start_method="fork") as pool:
        rec = Recorder(pool)

        @settings(max_examples=20, deadline=None)
        @given(job_lists(crashes=True))
        def check(job_list: list[Job]) -> None:
            run_and_check(pool, rec, job_list, Path(tmp), ids)

        check()


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_thread_and_inline_backend_events_follow_the_rules(backend: str) -> None:
    ids = itertools.count()
    with (
        tempfile.TemporaryDirectory() as tmp,
        TaskPool(2 if backend == "thread" else 1, backend=backend) as pool,
    ):
        rec = Recorder(pool)

        @settings(max_examples=25, deadline=None)
        @given(job_lists(crashes=False))
        def check(job_list: list[Job]) -> None:
            run_and_check(pool, rec, job_list, Path(tmp), ids)

        check()
