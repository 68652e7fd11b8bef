"""Timelines of real pools on every backend, and ``taskpool run --timeline``."""

from __future__ import annotations

import signal
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskpool import JobFuture, Retry, TaskPool, Timeline

from .. import _backup_jobs, jobs
from .._timeline_page import PNG_SIGNATURE, parse
from .test_cli import JOBS, run_captured, taskpool

TIMEOUT = 30.0


def _run_a_mix(pool: TaskPool, *, crash_and_timeout: bool) -> list[str]:
    """Successes, a failure, a failure retried; with ``crash_and_timeout`` a crash retried and a timeout.

    Returns the names of the jobs.
    """
    futures: list[JobFuture[Any]] = [
        pool.options(name=f"square[{i}]").submit(jobs.square, i) for i in range(4)
    ]
    futures.append(pool.options(name="bad").submit(jobs.raise_value_error, 1))
    retry = Retry(attempts=2, on=(ValueError,), on_crash=True)
    futures.append(pool.options(name="bad twice", retry=retry).submit(jobs.raise_value_error, 2))
    if crash_and_timeout:
        futures.append(pool.options(name="crash", retry=retry).submit(jobs.exit_worker, 3))
        futures.append(pool.options(name="too slow", timeout=0.3).submit(jobs.sleep_for, 20.0))
    for future in futures:
        future.exception(timeout=TIMEOUT)
    return [f.name for f in futures]


def _recorded(
    pool: TaskPool, *, crash_and_timeout: bool
) -> tuple[Timeline, dict[str, list[tuple[str, bool]]]]:
    """Run the mix on ``pool``, close and join it; its timeline, and each job's attempts as ``(outcome,
    retried)`` by job name (every job there)."""
    with pool:
        names = _run_a_mix(pool, crash_and_timeout=crash_and_timeout)
    timeline = pool.timeline()
    found: dict[str, list[tuple[str, bool]]] = {}
    for a in timeline.attempts:
        found.setdefault(a.name, []).append((a.outcome, a.retried))
    assert set(found) == set(names)
    return timeline, found


def test_a_process_pool_draws_failures_retries_crashes_and_timeouts(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method, timeline=True)
    timeline, outcomes = _recorded(pool, crash_and_timeout=True)
    assert outcomes["bad"] == [("failed", False)]
    assert outcomes["bad twice"] == [("failed", True), ("failed", False)]
    assert outcomes["crash"] == [("crashed", True), ("crashed", False)]
    assert outcomes["too slow"] == [("timed out", False)]
    assert all(outcomes[f"square[{i}]"] == [("succeeded", False)] for i in range(4))
    # Three workers died (two crashes, one killed at its timeout), and none of them came back in its own
    # row: a replacement takes the lane of the worker it replaced.
    assert 1 <= timeline.lanes <= 2  # one when a worker starts only after the other has ended
    ended = sorted(w.exitcode for w in timeline.workers if w.exitcode not in (None, 0))
    # The worker past its timeout ends by the signal that dumps its stack (or SIGKILL, when the dump is late).
    assert ended[1:] == [3, 3]
    assert ended[0] in (-signal.SIGUSR1, -signal.SIGKILL)
    assert {a.pid for a in timeline.attempts if a.name == "crash"} == {
        w.pid for w in timeline.workers if w.exitcode == 3
    }
    assert all(a.start <= a.end <= timeline.duration for a in timeline.attempts)
    assert 0 < timeline.overall_utilisation <= 1


def test_a_backup_copy_is_drawn_on_its_own_worker_and_wins(tmp_path: Path) -> None:
    marker = str(tmp_path / "stalled")
    with TaskPool(2, timeline=True) as pool:
        pool.map(jobs.square, range(4))  # both workers up: the copy finds one idle
        stalled = pool.options(backup_after=0.2).submit(_backup_jobs.stall_marked, (marker, 7))
        assert stalled.result(timeout=TIMEOUT) == 7
        timeline = pool.timeline()
    bars = [a for a in timeline.attempts if a.job_id == stalled.job_id]
    assert sorted((a.backup, a.outcome) for a in bars) == [
        (False, "cancelled"),
        (True, "succeeded"),
    ]
    first, copy = sorted(bars, key=lambda a: a.backup)
    assert first.worker != copy.worker
    assert first.start < copy.start
    assert timeline.counts()["backups"] == 1
    assert "backup copy" in timeline.to_html()


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_in_process_backends_draw_their_workers(backend: str) -> None:
    timeline, outcomes = _recorded(
        TaskPool(2, backend=backend, timeline=True), crash_and_timeout=False
    )
    assert outcomes["bad twice"] == [("failed", True), ("failed", False)]
    assert all(a.pid is None and isinstance(a.worker, int) for a in timeline.attempts)
    # The thread backend starts its threads on demand: as many as ran at once, at most 2.
    assert timeline.lanes == 1 if backend == "inline" else 1 <= timeline.lanes <= 2
    assert timeline.lane_label(0) == ("caller" if backend == "inline" else "thread 1")


@pytest.fixture
def dask_client() -> Iterator[Any]:
    """A client of an in-process Dask cluster of two single-threaded workers (quick to start)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close(timeout=10)
        cluster.close(timeout=10)


def test_a_dask_pool_draws_its_workers_by_address(dask_client: Any) -> None:
    pool = TaskPool(backend="dask", address=dask_client, timeline=True)
    timeline, outcomes = _recorded(pool, crash_and_timeout=False)
    assert outcomes["bad"] == [("failed", False)]
    assert outcomes["bad twice"] == [("failed", True), ("failed", False)]
    workers = set(dask_client.scheduler_info()["workers"])
    assert {a.worker for a in timeline.attempts} <= workers
    assert "dask" in timeline.to_html()


def test_the_page_and_the_png_name_every_job_and_mark_the_failed_one(tmp_path: Path) -> None:
    with TaskPool(2, timeline=True) as pool:
        names = _run_a_mix(pool, crash_and_timeout=False)
    timeline = pool.timeline()
    page = parse(timeline.save_html(tmp_path / "run.html").read_text(encoding="utf-8"))
    assert page.external == []
    titled = {a["title"].splitlines()[0].split(" (job ")[0] for a in page.attempts}
    assert titled == set(names)
    failed = [a for a in page.attempts if "failed" in a["classes"]]
    assert {a["title"].split(" (job ")[0] for a in failed} == {"bad", "bad twice"}
    assert all("succeeded" in a["classes"] for a in page.attempts if "square" in a["title"])

    pytest.importorskip("matplotlib")
    data = timeline.save_png(tmp_path / "run.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert struct.unpack(">II", data[16:24])[0] == 1200
    assert 5_000 < len(data) < 150_000


def test_a_pool_records_only_when_asked() -> None:
    with TaskPool(1, backend="thread") as pool:
        assert pool._handlers.by_kind == {}  # nothing listens, so nothing is recorded or sent
        pool.submit(jobs.square, 2).result(timeout=TIMEOUT)
        with pytest.raises(RuntimeError, match=r"TaskPool\(\.\.\., timeline=True\)"):
            pool.timeline()


def test_a_timeline_taken_while_a_job_runs_shows_it_running() -> None:
    started, gate = threading.Event(), threading.Event()
    with TaskPool(1, backend="thread", timeline=True) as pool:
        # Handlers run in the order they were added: the pool's recorder has the start when this one runs.
        pool.on("job_started", lambda event: started.set())
        future = pool.options(name="waiting").submit(jobs.wait_for_event, gate, TIMEOUT)
        assert started.wait(TIMEOUT)
        (attempt,) = pool.timeline().attempts
        assert (attempt.name, attempt.outcome) == ("waiting", "running")
        gate.set()
        future.result(timeout=TIMEOUT)
    assert [a.outcome for a in pool.timeline().attempts] == ["succeeded"]


def test_after_terminate_what_ran_is_drawn_stopped_where_the_pool_stopped() -> None:
    started = threading.Event()
    pool = TaskPool(1, timeline=True)
    try:
        pool.on("job_started", lambda event: started.set())
        pool.options(name="endless").submit(jobs.sleep_for, 60.0)
        assert started.wait(TIMEOUT)
    finally:
        pool.terminate()
    first = pool.timeline()
    (attempt,) = first.attempts
    assert (attempt.name, attempt.outcome) == ("endless", "cancelled")
    assert attempt.end == first.duration
    assert (
        pool.timeline() == first
    )  # the record ended with the pool: it does not grow with the clock


# -- taskpool run --timeline ------------------------------------------------------------------------------------
def test_the_command_writes_the_page_and_the_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    page, out = tmp_path / "run.html", tmp_path / "out.jsonl"
    argv = [f"{JOBS}:fail_on_three", "--range", "0", "6", "--workers", "2", "-o", str(out)]
    result = taskpool("run", *argv, "--timeline", str(page))
    assert result.returncode == 1, result.stderr  # input 3 fails
    found = parse(page.read_text(encoding="utf-8"))
    titled = {a["title"].split(" (job ")[0] for a in found.attempts}
    assert titled == {f"fail_on_three[{i}]" for i in range(6)}
    (failed,) = [a for a in found.attempts if "failed" in a["classes"]]
    assert failed["title"].startswith("fail_on_three[3]")
    assert tmp_path.joinpath("run.png").read_bytes()[:8] == PNG_SIGNATURE


def test_the_command_replaces_no_file_unasked(tmp_path: Path) -> None:
    page, png, out = tmp_path / "run.html", tmp_path / "run.png", tmp_path / "out.jsonl"
    png.write_bytes(b"keep me")
    argv = [f"{JOBS}:square", "--range", "0", "3", "-o", str(out), "--timeline", str(page)]
    refused = taskpool("run", *argv)
    assert refused.returncode == 2
    assert f"the timeline file {png} exists: pass --overwrite" in refused.stderr
    assert png.read_bytes() == b"keep me"
    assert not page.exists()
    assert not out.exists()  # refused before anything was opened or run
    assert taskpool("run", *argv, "--overwrite").returncode == 0
    assert page.stat().st_size > 0


def test_without_matplotlib_the_command_writes_the_page_and_says_why_not_the_png(
    tmp_path: Path,
) -> None:
    page = tmp_path / "run.html"
    out = str(tmp_path / "out.jsonl")
    argv = ["run", f"{JOBS}:square", "--range", "0", "2", "--workers", "1", "-o", out]
    code = (  # None in sys.modules: the import fails, as if it were not installed
        "import sys; sys.modules['matplotlib'] = None; from taskpool._cli import main; "
        f"sys.exit(main({[*argv, '--timeline', str(page)]!r}))"
    )
    result = run_captured([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert "the PNG needs matplotlib" in result.stderr
    assert page.exists()
    assert not page.with_suffix(".png").exists()
