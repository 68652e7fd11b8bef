"""The Dask backend's live attempts: those sent to Dask and not yet reported, with their deadlines.

Whoever takes an attempt out of the table (`Attempts.settle`, or `Attempts.next_due` for one past its deadline)
is the one that reports its outcome, so every attempt gets exactly one terminal report, whichever of the done
callback, the timer thread, `stop` and `shutdown` gets there first.

Runs in the parent, in every thread of the backend: the caller threads (submit, stop, shutdown), the client's
event-loop thread (STARTED events), Dask's callback thread (finished tasks) and the timer thread. One lock
guards the table, the deadlines and the reports waiting for the timer thread; nothing else runs under it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..._core.timers import TimerHeap

if TYPE_CHECKING:
    from ..._core.job import Job
    from ..._core.reports import Report

__all__ = ["Attempt", "Attempts"]


class Attempt:
    """One attempt of a job sent to Dask (parent side)."""

    __slots__ = (
        "deadline",
        "future",
        "job",
        "key",
        "payload",
        "pid",
        "requeues",
        "started",
        "worker",
    )

    def __init__(self, job: Job, key: str, payload: tuple[bytes, bytes], requeues: int) -> None:
        self.job = job
        self.key = key
        self.payload = payload
        self.requeues = requeues  # how often this attempt was sent again because its worker died before it began
        self.future: Any = None  # the distributed.Future, once client.submit returned
        self.worker: str | None = None
        self.pid: int | None = None
        self.started = False  # STARTED reported
        self.deadline: float | None = None


class Attempts:
    """The attempts sent to Dask and not yet reported, by Dask task key (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Wakes the timer thread: a deadline was armed, reports were deferred, or the backend shut down.
        self._wakeup = threading.Condition(self._lock)
        self._live: dict[str, Attempt] = {}
        self._by_job: dict[int, str] = {}
        self._deadlines: TimerHeap[str] = TimerHeap()
        self._deferred: list[Report] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether `close` was called: the backend takes no more attempts."""
        return self._closed

    def add(self, attempt: Attempt) -> bool:
        """Register ``attempt`` before Dask knows its key; False once the backend is closed."""
        with self._lock:
            if self._closed:
                return False
            self._live[attempt.key] = attempt
            self._by_job[attempt.job.id] = attempt.key
        return True

    def is_live(self, key: str) -> bool:
        """Whether the attempt ``key`` still waits for its outcome."""
        with self._lock:
            return key in self._live

    def of_job(self, job: Job) -> Attempt | None:
        """The live attempt of ``job``, if any."""
        with self._lock:
            key = self._by_job.get(job.id)
            attempt = self._live.get(key) if key is not None else None
        return attempt if attempt is not None and attempt.job is job else None

    def settle(self, key: str) -> Attempt | None:
        """Take an attempt out of the table; the caller that gets it back reports its outcome."""
        with self._lock:
            return self._pop(key)

    def _pop(self, key: str) -> Attempt | None:
        attempt = self._live.pop(key, None)
        if attempt is not None and self._by_job.get(attempt.job.id) == key:
            del self._by_job[attempt.job.id]
        return attempt

    def settle_cancelled(self, upto: int) -> list[Attempt]:
        """Take out the attempts of jobs up to id ``upto`` whose future was cancelled and that have not begun."""
        with self._lock:
            keys = [
                key
                for key, a in self._live.items()
                if a.worker is None and a.job.id <= upto and a.job.future.cancelled()
            ]
            return [a for a in map(self._pop, keys) if a is not None]

    def begin(self, key: str, worker: str, pid: int, want_started: bool) -> Attempt | None:
        """Note that attempt ``key`` began on ``worker``, and arm its deadline.

        Returns:
            The attempt when STARTED is to be reported for it now (``want_started``, and not reported yet).
        """
        with self._lock:
            attempt = self._live.get(key)
            if attempt is None:
                return None
            attempt.worker, attempt.pid = worker, pid
            timeout = attempt.job.options.timeout
            if timeout is not None and attempt.deadline is None:
                attempt.deadline = time.monotonic() + timeout
                self._deadlines.push(attempt.deadline, key)
                self._wakeup.notify()
            if want_started and not attempt.started:
                attempt.started = True
                return attempt
        return None

    def defer(self, reports: list[Report]) -> None:
        """Hand reports to the timer thread, so the sink is only ever called from the backend's threads."""
        with self._lock:
            self._deferred.extend(reports)
            self._wakeup.notify()

    def next_due(self) -> tuple[list[Report], list[Attempt]] | None:
        """Wait for deferred reports or attempts past their deadline (the timer thread).

        Returns:
            The deferred reports and the attempts taken out of the table because their deadline passed, or
            None once the backend is closed.
        """
        with self._lock:
            while not self._closed and not self._deferred:
                wait = self._deadlines.wait_time(time.monotonic())
                if wait == 0.0:
                    break
                self._wakeup.wait(wait)
            if self._closed:
                return None
            reports, self._deferred = self._deferred, []
            expired: list[Attempt] = []
            for key in self._deadlines.pop_due(time.monotonic()):
                attempt = self._pop(key)
                if attempt is not None:
                    expired.append(attempt)
        return reports, expired

    def close(self) -> list[Any] | None:
        """Forget every attempt and stop the timer thread; return the Dask futures still out, or None if
        already closed."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            leftover = [a.future for a in self._live.values() if a.future is not None]
            self._live.clear()
            self._by_job.clear()
            self._deadlines.clear()
            self._wakeup.notify_all()
        return leftover
