"""The thread backend: jobs run in threads of the parent process, for I/O-bound work.

Threads: ``workers`` job threads, started on demand, each taking jobs from one shared queue and reporting
each outcome to the sink as soon as it has it. Jobs share the parent's memory, so nothing is pickled, and
lambdas, closures and unpicklable arguments all work.

What it cannot do: a running thread cannot be stopped from outside in CPython, so this backend enforces no
timeouts (a pool with the thread backend refuses ``timeout=`` when it is configured, rather than pretending)
and cannot stop a running job. A job that crashes the interpreter takes the whole process with it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.local import SameProcessSharing, run_attempt
from .._core.reports import ReportKind, Sink
from .._errors import InitializerError

if TYPE_CHECKING:
    from .._core.backlog import Backlog
    from .._core.job import Job

__all__ = ["ThreadBackend"]


class ThreadBackend(SameProcessSharing):
    """Runs jobs in a fixed set of threads in the parent process."""

    name = "thread"
    supports_timeout = False
    supports_stop = False
    supports_backup = False  # a loser could not be stopped, only ignored
    start_method: str | None = None
    shared_state_unavailable: str | None = None

    def __init__(
        self,
        workers: int,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.workers = workers
        self._initializer = initializer
        self._initargs = initargs
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards _threads: caller threads start job threads on demand
        # One token per job thread that waits for a job: a submit takes one, or starts a thread if none is
        # left. A count read beside the queue's size raced with a thread that had taken a job and not yet
        # counted itself busy: a burst could then be left to one thread (two jobs that must meet never did).
        self._idle = threading.Semaphore(0)
        self._sink: Sink = lambda reports: None
        self._backlog: Backlog | None = None
        self._want_started = False
        self._broken = False

    def start(self, sink: Sink, backlog: Backlog | None = None) -> None:
        self._sink = sink
        self._backlog = backlog

    def submit(self, job: Job) -> None:
        self._queue.put(job)
        # An idle thread takes this job; without one, start a thread (up to ``workers``).
        if not self._idle.acquire(blocking=False) and len(self._threads) < self.workers:
            with self._lock:
                if len(self._threads) < self.workers:
                    wid = len(self._threads) + 1
                    thread = threading.Thread(
                        target=self._work, args=(wid,), name=f"taskpool-thread-{wid}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()

    def stop(self, job: Job) -> bool:
        return False

    def withdraw(self, upto: int) -> None:
        """Nothing to do: a job thread takes a job only to begin it, so a job not begun is still pending and the pool's `cancel` ends it."""

    def want_started(self, enabled: bool) -> None:
        self._want_started = enabled

    def shutdown(self, wait: bool) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join(10.0)

    def _work(self, wid: int) -> None:
        """A job thread's life: run the initializer, then jobs until told to stop."""
        sink = self._sink
        sink([(ReportKind.WORKER_UP, None, wid, None, None, None)])
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except Exception as exc:
                self._broken = True
                error = InitializerError(f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
                sink([(ReportKind.BROKEN, None, None, None, None, error)])
        backlog = self._backlog
        while True:
            if backlog is not None and backlog.over():
                # Handlers lag behind: wait for them rather than pile up outcomes (see Backlog).
                backlog.wait_below()
            job = self._queue.get()
            if job is None:
                break
            run_attempt(job, wid, sink, self._want_started)
            del job  # hold nothing of a finished job while idle
            self._idle.release()  # waiting for the next job: the next submit need not start a thread
        sink([(ReportKind.WORKER_DOWN, None, wid, None, 0, None)])
