"""What ties a worker and the processes its jobs start to the pool's process, so that none outlives it.

Runs in three places:

- The pool's process: `lifeline` (the scheduler thread, when it starts a worker), `watch_death`,
  `signal_worker` and `reap` (the scheduler thread only); `_forget_lifeline` in the child of any fork
  of it (the fork hook).
- Each worker process: `lead_own_group` and `watch_lifeline` (its main thread, first thing), and the
  lifeline watcher thread that `watch_lifeline` starts.

**The lifeline.** One pipe per pool-owning process. Only that process holds its write end (opened
non-inheritable; a fork hook closes it in every process forked from it, multiprocessing's fork workers
included), and nothing ever writes to it. Each worker gets a copy of the read end and a daemon thread that
waits on it: end of file means the pool's process is gone, however it died and whoever the worker's parent is
(under forkserver it is the forkserver, which lives on while its children hold its own "alive" pipe, so
`PR_SET_PDEATHSIG` never fires there). The thread then kills the worker's process group and with it the
worker.

**Process groups.** Each worker leads its own process group, so that the processes its jobs start (which
stay in it unless they move out on purpose) can be killed with it: by the lifeline, and by the scheduler
whenever a worker ends, on purpose or not. Workers ignore SIGINT, so Ctrl-C in a terminal, which reaches only
the foreground group, means what it did.

**Death detection.** Where the scheduler is the worker's parent (fork, spawn), it watches a pidfd
(``os.pidfd_open``, Linux 5.3+): it becomes readable when the process ends, whatever its descendants hold.
multiprocessing's own sentinel is the end of a pipe that the worker holds and, under spawn, passes on to every
process it starts, so a job's background process could hide the worker's death for as long as it ran. Under
forkserver the sentinel is written by the forkserver once it has reaped the worker, which no descendant holds;
it is kept there, and everywhere ``pidfd_open`` is missing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from typing import TYPE_CHECKING, Any

from ..._runtime.hooks import register_once

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = [
    "lead_own_group",
    "lifeline",
    "lifeline_fd",
    "reap",
    "signal_worker",
    "watch_death",
    "watch_lifeline",
]

_lock = threading.Lock()
# This process's lifeline: [the write end, the read end, a Connection on the read end or None], made by
# `lifeline_fd`; the Connection by `lifeline`, on first use (a template needs only the descriptor, and is
# started before multiprocessing.connection is imported).
_lifeline: list[Any] | None = None


def lifeline_fd() -> int:
    """The read end of this process's lifeline, made on first use (any thread of the pool's process).

    The write end stays in this process only, for as long as it lives.
    """
    global _lifeline
    register_once("lifeline", after_fork_in_child=_forget_lifeline)
    with _lock:
        if _lifeline is None:
            r, w = os.pipe()  # both non-inheritable: a subprocess never gets the write end
            _lifeline = [w, r, None]
        fd: int = _lifeline[1]
        return fd


def lifeline() -> Connection:
    """The read end of this process's lifeline as a Connection: pass it to each worker (scheduler thread)."""
    from multiprocessing.connection import Connection

    fd = lifeline_fd()
    with _lock:
        assert _lifeline is not None
        if _lifeline[2] is None:
            _lifeline[2] = Connection(fd, writable=False)
        conn: Connection = _lifeline[2]
        return conn


def _forget_lifeline() -> None:
    """In the child of a fork: the lifeline is the parent's. Close its write end here, or this process would
    keep the parent's workers alive after the parent died (a fork worker gets the read end as an argument)."""
    global _lifeline
    if _lifeline is not None:
        with contextlib.suppress(OSError):
            os.close(_lifeline[0])
        _lifeline = None


def lead_own_group() -> None:
    """Make the calling worker the leader of a new process group (worker, main thread, before any job)."""
    with contextlib.suppress(
        OSError
    ):  # a safety net only: without it, a job's descendants are not killed
        os.setpgid(0, 0)


def watch_lifeline(conn: Connection | None) -> None:
    """Start the thread that ends this worker and its group when the pool's process is gone (worker)."""
    if conn is None:
        return
    threading.Thread(
        target=_wait_for_end_of_lifeline,
        args=(conn.fileno(),),
        name="taskpool-lifeline",
        daemon=True,
    ).start()


def _wait_for_end_of_lifeline(fd: int) -> None:
    """The lifeline watcher thread: block until the lifeline's end of file, then kill this process's group.

    Nobody writes to the lifeline, so any event is its end of file (or an error: the fd is gone, which ends
    nothing). It needs the GIL for a moment after the event: a job stuck in one long C call that holds it
    delays the kill until that call returns.
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    try:
        events = poller.poll()
    except OSError:
        return
    if any(mask & select.POLLNVAL for _, mask in events):
        return  # the fd was closed in this process: not the pool's death
    pid = os.getpid()
    if os.getpgid(0) == pid:
        _signal_group(pid, signal.SIGKILL)  # this process included
    os.kill(pid, signal.SIGKILL)


def signal_worker(process: Any, signum: int) -> None:
    """Send ``signum`` (SIGKILL or SIGTERM) to worker ``process`` and every process its jobs started.

    The worker itself is signalled too: one still starting has no group of its own yet.
    """
    _signal_group(process.pid, signum)
    with contextlib.suppress(Exception):
        if signum == signal.SIGKILL:
            process.kill()
        else:
            process.terminate()


def reap(process: Any) -> int | None:
    """Worker ``process`` has ended: kill what is left of its group, reap it; returns its exit code.

    Whatever a job started does not outlive its worker, however the worker ended.
    """
    _signal_group(
        process.pid, signal.SIGKILL
    )  # before the reap: the pid, the group's id, is not reused yet
    # Ask before join: join waits on the sentinel first, which a process that left the group may still hold.
    if process.exitcode is None:
        process.join(1.0)
    process.join(0)  # forget it in multiprocessing's list of children
    exitcode: int | None = process.exitcode
    return exitcode


def _signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group that worker ``pid`` leads, if it exists.

    A worker that has not made its group yet (it is still starting) has none: nothing happens. Call it before
    the worker is reaped, or while its group has other members, so that its pid (the group's id) cannot have
    been reused.
    """
    with contextlib.suppress(OSError):
        os.killpg(pid, signum)


def watch_death(process: Any, start_method: str) -> int:
    """The fd that becomes readable when worker ``process`` ends: the caller closes it unless it is the sentinel.

    A pidfd where this process is the worker's parent (no pid reuse is possible before it reaps the worker)
    and the platform has one; multiprocessing's sentinel otherwise (see the module docstring).
    """
    if start_method != "forkserver" and hasattr(os, "pidfd_open"):
        with contextlib.suppress(
            OSError
        ):  # an old kernel or a seccomp filter: the sentinel will do
            return os.pidfd_open(process.pid)
    sentinel: int = process.sentinel
    return sentinel
