"""No process a pool started outlives the pool's process or its own job, and none blinds the scheduler.

A job's background processes (here a shell's ``sleep &``) inherit the worker's file descriptors; a killed pool's
workers have their own descendants. Each test names every process it expects to end, as psutil handles made
while they run (so a recycled pid is never mistaken for one of them), and waits for them in bounded time.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from taskpool import JobTimeoutError, TaskPool, WorkerCrashedError

from .. import _orphan_jobs as oj

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
# Seconds any single blocking call in these tests may take; far above what each needs.
TIMEOUT = 20.0
# The promise: a killed pool's workers, their descendants and multiprocessing's helpers are gone this soon.
GONE_BOUND = 5.0
# The promise: a worker's death is reported this soon, whatever its job's background processes hold.
CRASH_BOUND = 2.0
# How late a timed-out job may be reported, past its timeout.
TIMEOUT_SLACK = 1.5

SCRIPT = """
import sys, threading
from taskpool import TaskPool
from tests import _orphan_jobs as oj

pool = TaskPool(2, start_method=sys.argv[1], capture_output=False)
pids = set()
both = threading.Event()

def on_started(event):
    pids.add(event.pid)
    if len(pids) == 2 and not both.is_set():
        print(" ".join(["workers", *map(str, sorted(pids))]), flush=True)
        both.set()

pool.on("job_started", on_started)
pool.submit(oj.print_grandchild_then_hang)
pool.submit(oj.hang)
# Until the test kills this process. Not in sys.stdin.readline(): a fork worker would close stdin, whose
# lock that call holds.
threading.Event().wait(600)
"""


def alive(p: psutil.Process) -> bool:
    """Whether ``p`` still runs: a zombie has ended (its parent, if any, has only to reap it)."""
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: list[psutil.Process], bound: float) -> float:
    """Wait until every process in ``procs`` has ended; returns the seconds it took. Fails after ``bound``."""
    t0 = time.monotonic()
    deadline = t0 + bound
    for p in procs:
        while alive(p):
            if time.monotonic() > deadline:
                left = [q for q in procs if alive(q)]
                raise AssertionError(f"still running after {bound} s: {left}")
            with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess):
                p.wait(0.02)  # bounded: psutil polls a process that is not our child
    return time.monotonic() - t0


def kill_alive(procs: list[psutil.Process]) -> None:
    for p in procs:
        if alive(p):
            with contextlib.suppress(psutil.Error):
                p.kill()


@pytest.fixture
def leftovers() -> Iterator[list[psutil.Process]]:
    """Processes a test expects to end: killed at teardown if the test failed before they did."""
    procs: list[psutil.Process] = []
    yield procs
    kill_alive(procs)


def grandchild(path: Path) -> psutil.Process:
    """The background process a job started, from the pid it wrote to ``path`` before it went on."""
    return psutil.Process(int(path.read_text()))


def assert_ended_with_its_worker(p: psutil.Process, leftovers: list[psutil.Process]) -> None:
    """A job's background process ends soon after the job's worker ended."""
    leftovers.append(p)
    wait_gone([p], CRASH_BOUND)


def test_nothing_outlives_a_killed_parent(
    start_method: str, leftovers: list[psutil.Process]
) -> None:
    """SIGKILL the pool's process while jobs run forever: every worker, a job's own background process,
    and multiprocessing's helpers (forkserver, resource tracker) end within seconds."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, start_method],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    reader = threading.Thread(target=read, name="script-stdout", daemon=True)
    reader.start()
    try:
        named: dict[str, list[int]] = {}
        while len(named) < 2:
            words = lines.get(timeout=TIMEOUT).split()
            named[words[0]] = [int(w) for w in words[1:]]
        script = psutil.Process(proc.pid)
        workers = [psutil.Process(pid) for pid in named["workers"]]
        grandchildren = [psutil.Process(pid) for pid in named["grandchild"]]
        jobs_side = {p.pid for p in workers + grandchildren}
        # Children that have ended already are passing ones (the shell of the job's os.system, which exits
        # as it prints the grandchild's pid): only what still runs must end with the script.
        helpers = [
            p for p in script.children(recursive=True) if p.pid not in jobs_side and alive(p)
        ]
        leftovers.extend(workers + grandchildren + helpers)
        assert all(alive(p) for p in workers + grandchildren)

        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        assert proc.wait(TIMEOUT) == -signal.SIGKILL
        wait_gone(workers + grandchildren, GONE_BOUND)
        wait_gone(helpers, GONE_BOUND)
        latency = time.monotonic() - t0
        print(f"\n{start_method}: parent SIGKILL to every child gone: {latency * 1000:.0f} ms")
        assert latency < GONE_BOUND
        assert not script.is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        kill_alive(
            leftovers
        )  # after a failure: they hold the script's stdout, which the reader waits on
        reader.join(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


def test_crash_with_a_grandchild_holding_pipes_is_reported_promptly(
    pool: TaskPool, tmp_path: Path, leftovers: list[psutil.Process]
) -> None:
    """A job starts a background process that holds the worker's pipes, then crashes: the crash is reported
    at once, not when that process exits, and the process ends with its worker."""
    path = tmp_path / "pid"
    t0 = time.monotonic()
    future = pool.submit(oj.grandchild_then_crash, str(path))
    with pytest.raises(WorkerCrashedError) as info:
        future.result(timeout=TIMEOUT)
    assert time.monotonic() - t0 < CRASH_BOUND + 1.0  # the worker's start included
    assert info.value.exitcode == 3
    assert_ended_with_its_worker(grandchild(path), leftovers)
    assert pool.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32


def test_timeout_with_a_grandchild_fires_on_time_and_ends_it(
    pool: TaskPool, tmp_path: Path, leftovers: list[psutil.Process]
) -> None:
    """A 0.5 s timeout fires on time although the job's background process holds the worker's pipes, and
    that process is killed with the worker."""
    path = tmp_path / "pid"
    started = pool.shared.event()
    future = pool.options(timeout=0.5).submit(oj.grandchild_then_hang, str(path), started)
    assert started.wait(TIMEOUT)
    t0 = time.monotonic()
    with pytest.raises(JobTimeoutError):
        future.result(timeout=TIMEOUT)
    assert time.monotonic() - t0 < 0.5 + TIMEOUT_SLACK
    assert_ended_with_its_worker(grandchild(path), leftovers)
    assert pool.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32


def test_stop_ends_the_jobs_descendants(
    pool: TaskPool, tmp_path: Path, leftovers: list[psutil.Process]
) -> None:
    """`future.stop()` kills the worker and every process its job started."""
    path = tmp_path / "pid"
    started = pool.shared.event()
    future = pool.submit(oj.grandchild_then_hang, str(path), started)
    assert started.wait(TIMEOUT)
    leftovers.append(grandchild(path))
    assert future.stop()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=TIMEOUT)
    wait_gone(leftovers, CRASH_BOUND)


def test_terminate_ends_the_jobs_descendants(
    start_method: str, tmp_path: Path, leftovers: list[psutil.Process]
) -> None:
    """`terminate()` kills the workers and every process their jobs started."""
    pool = TaskPool(2, start_method=start_method)
    try:
        started = [pool.shared.event() for _ in range(2)]
        paths = [tmp_path / f"pid{i}" for i in range(2)]
        for path, event in zip(paths, started, strict=True):
            pool.submit(oj.grandchild_then_hang, str(path), event)
        assert all(event.wait(TIMEOUT) for event in started)
        leftovers.extend(grandchild(path) for path in paths)
    finally:
        pool.terminate()
    wait_gone(leftovers, CRASH_BOUND)
