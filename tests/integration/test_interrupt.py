"""Ctrl-C and interpreter exit: the parent decides, fast, and no worker outlives it.

Each scenario runs in a child Python program (its own session, so SIGINT can go to its whole process group,
as a terminal sends it). The child prints its workers' pids once both run a job; the test then sends SIGINT,
waits for the child's "interrupted" line, and checks that every worker pid is gone.
"""

from __future__ import annotations

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

from taskpool import Event, TaskPool

from .. import _failure_jobs as fj
from .. import jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(45)

ROOT = Path(__file__).resolve().parents[2]
# How long the child may take to start its pool and both jobs (a loaded machine starts processes slowly).
STARTUP = 30.0
# The promise: KeyboardInterrupt within this many seconds of SIGINT.
INTERRUPT_BOUND = 2.0
# The promise: an interpreter with an open pool and running jobs exits within this many seconds.
EXIT_BOUND = 5.0

CHILD = """
import sys, threading
from taskpool import TaskPool
from tests import jobs

mode, method = sys.argv[1], sys.argv[2]
pool = TaskPool(2, start_method=method)
pids = set()
both = threading.Event()

def on_started(event):
    pids.add(event.pid)
    if len(pids) == 2 and not both.is_set():
        print(" ".join(["workers", *map(str, sorted(pids))]), flush=True)
        both.set()

pool.on("job_started", on_started)
try:
    if mode == "map":
        pool.map(jobs.sleep_for, [60, 60], chunksize=1)
    elif mode == "imap":
        for _ in pool.imap(jobs.sleep_for, [60, 60]):
            pass
    elif mode == "apply":
        pool.submit(jobs.sleep_for, 60)  # so that both workers run a job
        pool.apply(jobs.sleep_for, (60,))
    elif mode == "result":
        futures = [pool.submit(jobs.sleep_for, 60) for _ in range(2)]
        futures[0].result()
    elif mode == "exit":
        futures = [pool.submit(jobs.sleep_for, 60) for _ in range(2)]
        both.wait(60)
        sys.stdin.readline()  # the test has the workers' pids: leave now
        print("leaving", flush=True)
        sys.exit(0)  # with the pool open and both jobs running
except KeyboardInterrupt:
    print("interrupted", pool.state.value, flush=True)
    sys.exit(0)
print("not interrupted", flush=True)
sys.exit(1)
"""


class Child:
    """A child Python program running CHILD, with its stdout read line by line by a reader thread."""

    def __init__(self, mode: str, start_method: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, start_method],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name="child-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the child printed nothing within {timeout} s") from None

    def workers(self) -> list[psutil.Process]:
        """Wait for the child's "workers" line; the worker processes it names, as psutil handles."""
        words = self.line(STARTUP).split()
        assert words[0] == "workers", words
        return [psutil.Process(int(pid)) for pid in words[1:]]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def child_factory() -> Iterator[list[Child]]:
    children: list[Child] = []
    yield children
    for child in children:
        child.close()


def assert_gone(workers: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(workers, timeout=EXIT_BOUND)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"workers left behind: {alive}"


@pytest.mark.parametrize("mode", ["map", "imap", "apply", "result"])
def test_ctrl_c_interrupts_a_blocked_caller(
    child_factory: list[Child], start_method: str, mode: str
) -> None:
    child = Child(mode, start_method)
    child_factory.append(child)
    workers = child.workers()
    assert len(workers) == 2
    t0 = time.monotonic()
    os.killpg(child.proc.pid, signal.SIGINT)  # as a terminal does: the child and its workers
    words = child.line(INTERRUPT_BOUND + 1.0).split()
    elapsed = time.monotonic() - t0
    assert words[0] == "interrupted", words
    assert elapsed < INTERRUPT_BOUND
    if mode != "result":
        assert words[1] == "terminated"  # map, imap and apply stop the pool themselves
    assert child.proc.wait(EXIT_BOUND) == 0
    assert_gone(workers)


def test_interpreter_exit_with_open_pool_and_running_jobs(
    child_factory: list[Child], start_method: str
) -> None:
    child = Child("exit", start_method)
    child_factory.append(child)
    workers = child.workers()
    assert child.proc.stdin is not None
    child.proc.stdin.write("go\n")
    child.proc.stdin.flush()
    assert child.line(STARTUP) == "leaving"
    t0 = time.monotonic()
    assert child.proc.wait(EXIT_BOUND * 2) == 0
    assert time.monotonic() - t0 < EXIT_BOUND
    assert_gone(workers)


def test_workers_ignore_sigint() -> None:
    """SIGINT sent straight to a worker does not stop its job: the parent decides what Ctrl-C means."""
    with TaskPool(2) as pool:
        assert all(pool.map(fj.ignore_sigint_check, [None, None], chunksize=1))
        pids: list[int] = []
        started = threading.Event()

        def on_started(event: Event) -> None:
            assert event.pid is not None
            pids.append(event.pid)
            started.set()

        pool.on("job_started", on_started)
        future = pool.submit(jobs.sleep_for, 0.5)
        assert started.wait(STARTUP)
        os.kill(pids[0], signal.SIGINT)
        assert future.result(timeout=STARTUP) == 0.5
        assert psutil.pid_exists(pids[0])
