"""`Sink`: collects the reports a backend makes, for tests that drive a backend without a pool.

Any thread may call it (a backend's threads do); the test's thread waits on it, each wait bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from taskpool._core.job import Job
from taskpool._core.reports import Report, ReportKind

__all__ = ["TERMINAL", "TIMEOUT", "Sink"]

# Seconds one wait may take; generous for a slow 2-core CI machine.
TIMEOUT = 30.0
TERMINAL = (ReportKind.SUCCEEDED, ReportKind.FAILED, ReportKind.STOPPED, ReportKind.SKIPPED)


class Sink:
    """Collects reports (the backend's threads call it) and lets the test wait for terminal ones."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self._cond = threading.Condition()

    def __call__(self, reports: list[Report]) -> None:
        with self._cond:
            self.reports.extend(reports)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = TIMEOUT) -> list[Report]:
        """Wait for ``count`` terminal reports; return all reports so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(r[0] in TERMINAL for r in self.reports) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {self.reports!r} after {timeout} s")
                self._cond.wait(left)
            return list(self.reports)

    def outcome(self, job: Job, timeout: float = TIMEOUT) -> Report:
        """The single terminal report of ``job``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.reports if r[1] is job and r[0] in TERMINAL]
                if found:
                    assert len(found) == 1, found
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no outcome for {job!r} in {self.reports!r}")
                self._cond.wait(left)

    def wait_for(self, match: Callable[[Report], bool], timeout: float = TIMEOUT) -> Report:
        """The first report that ``match`` accepts."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.reports if match(r)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such report in {self.reports!r}")
                self._cond.wait(left)
