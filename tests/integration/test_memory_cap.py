"""``max_memory_per_worker``: a worker past its limit after a job is replaced before its next one."""

from __future__ import annotations

import threading

import pytest

from taskpool import Event, TaskPool, WorkerStartError

from .. import _stuck_jobs as sj

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0


def test_a_worker_past_its_limit_is_replaced_before_its_next_job(start_method: str) -> None:
    exited = threading.Event()
    reasons: list[str | None] = []

    def on_exit(e: Event) -> None:
        reasons.append(e.reason)
        exited.set()

    with TaskPool(1, start_method=start_method, max_memory_per_worker="200MB") as pool:
        pool.on("worker_exited", on_exit)
        before = pool.submit(sj.pid).result(timeout=TIMEOUT)
        # Submitted together: the jobs behind the big one may be in its worker already, and must not run there.
        big = pool.submit(sj.keep_memory, 300)
        after = [pool.submit(sj.pid) for _ in range(5)]
        big_pid = big.result(timeout=TIMEOUT)
        pids = {f.result(timeout=TIMEOUT) for f in after}
        assert exited.wait(TIMEOUT)
    assert big_pid == before  # the job that went past the limit finished normally, where it started
    assert big_pid not in pids
    assert len(pids) == 1  # one fresh worker, which stays under the limit
    assert reasons[0] is not None
    assert reasons[0].startswith("memory limit: 3")
    assert reasons[0].endswith(" MB > 200.0 MB")


def test_a_worker_under_its_limit_is_kept() -> None:
    with TaskPool(1, max_memory_per_worker="2GiB") as pool:
        assert len({pool.submit(sj.keep_memory, 10).result(timeout=TIMEOUT) for _ in range(3)}) == 1


def test_a_limit_below_a_fresh_workers_memory_breaks_the_pool_before_any_job(
    start_method: str,
) -> None:
    """Every worker would be replaced after each job: the pool says so at once instead of thrashing."""
    started: list[int | None] = []
    pool = TaskPool(2, start_method=start_method, max_memory_per_worker="1kB")
    pool.on("worker_started", lambda e: started.append(e.pid))
    try:
        futures = [pool.submit(sj.pid) for _ in range(20)]
        for future in futures:
            with pytest.raises(WorkerStartError, match=r"max_memory_per_worker=1\.0 kB"):
                future.result(timeout=TIMEOUT)
        assert "a fresh worker uses" in str(future.exception())
        with pytest.raises(WorkerStartError):
            pool.submit(sj.pid)
    finally:
        pool.terminate()
    assert started == []  # none was ready, so none ran a job


@pytest.mark.parametrize("limit", ["abc", "12 parsecs", 0, -5, "0MB", True, 1.5, "-1G"])
def test_a_bad_limit_is_refused_before_any_worker_starts(limit: object) -> None:
    with pytest.raises(
        ValueError, match="max_memory_per_worker must be a positive number of bytes"
    ):
        TaskPool(1, max_memory_per_worker=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_backends_without_worker_processes_refuse_a_limit(backend: str) -> None:
    with pytest.raises(ValueError, match="applies to the process backend"):
        TaskPool(1, backend=backend, max_memory_per_worker="1GB")
