"""Helpers for the asyncio tests: worker pids from ``job_started`` events, and whether a process is gone."""

from __future__ import annotations

import threading
import time

import psutil

from taskpool import Event


class StartedPids:
    """An event handler that records the pid of each job that starts, and signals when enough have."""

    def __init__(self, count: int = 1) -> None:
        self.pids: list[int] = []  # none on the thread and inline backends
        self.started = 0
        self.count = count
        self.reached = threading.Event()

    def __call__(self, event: Event) -> None:
        self.started += 1
        if event.pid is not None:
            self.pids.append(event.pid)
        if self.started >= self.count:
            self.reached.set()


def gone_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` has ended (exited, or a zombie not yet reaped) within ``seconds``.

    Polls rather than waits: waiting would reap a child of ours that its pool must reap itself.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
