"""Fixtures shared by every test module.

Guards against hangs and leaks: pytest-timeout bounds every test (pyproject.toml), and `no_leftovers` checks
after each test that no child process and no taskpool thread is left behind.
"""

from __future__ import annotations

import copyreg
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from taskpool import TaskPool
from tests import jobs

START_METHODS = [
    m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()
]

# What the command line of taskpool's worker template process holds.
TEMPLATE_MARK = "taskpool._backends.process.template import main"

# A pool's workers, scheduler and event threads must all be gone this soon after join() or terminate().
SHUTDOWN_BOUND = 10.0


def _our_children() -> list[psutil.Process]:
    # The forkserver process and the resource tracker are started once per interpreter by multiprocessing
    # itself and live until it exits: not leaks of ours. Nor is taskpool's worker template, shared by the
    # pools of this process until it exits; the workers forked from it (its children, with its command
    # line) are checked like any other.
    me = os.getpid()
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            ppid = child.ppid()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if "forkserver" in cmdline or "resource_tracker" in cmdline:
            continue
        if ppid == me and TEMPLATE_MARK in cmdline:
            continue
        children.append(child)
    return children


def _our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("taskpool-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a worker process or a taskpool thread running after it."""
    yield
    deadline = time.monotonic() + SHUTDOWN_BOUND
    while time.monotonic() < deadline:  # bounded: processes take a moment to be reaped after a kill
        children, threads = _our_children(), _our_threads()
        if not children and not threads:
            return
        psutil.wait_procs(children, timeout=0.1)
        for thread in threads:
            thread.join(0.1)
    children, threads = _our_children(), _our_threads()
    for child in children:
        child.kill()
    assert not children, f"child processes left behind: {children}"
    assert not threads, f"threads left behind: {threads}"


@pytest.fixture(autouse=True)
def default_exception_pickling() -> None:
    """Undo, for the tests' deliberately unpicklable exceptions, what importing distributed does to pickle.

    Importing distributed runs ``tblib.pickling_support.install()``, which registers a copyreg reducer for every
    exception class that exists at that moment; it rebuilds exceptions without calling ``__init__``. Worker
    processes forked afterwards inherit it. The tests that check what happens to an exception that cannot be
    pickled or rebuilt need the default behaviour, whichever test imported distributed first.
    """
    for exc_type in (jobs.NeedsKeywordError, jobs.UnpicklableError):
        copyreg.dispatch_table.pop(exc_type, None)


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start method the platform has."""
    method: str = request.param
    return method


@pytest.fixture
def pool(start_method: str) -> Iterator[TaskPool]:
    """A two-worker process pool, under each start method; terminated if the test left it open."""
    p = TaskPool(2, start_method=start_method)
    try:
        yield p
    finally:
        p.terminate()


@pytest.fixture
def thread_pool() -> Iterator[TaskPool]:
    """A one-worker thread pool: its jobs can block on a `threading.Event` that the test holds."""
    p = TaskPool(1, backend="thread")
    try:
        yield p
    finally:
        p.terminate()


@pytest.fixture(params=["process", "thread", "inline"])
def any_pool(request: pytest.FixtureRequest) -> Iterator[TaskPool]:
    """A two-worker pool on each backend (forkserver for processes)."""
    p = TaskPool(2, backend=request.param)
    try:
        yield p
    finally:
        p.terminate()
