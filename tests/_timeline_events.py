"""Hand-made pool events for the timeline tests (they run in the test process; no pool is made)."""

from __future__ import annotations

from typing import Any

from taskpool import Event

T0 = 1_000_000.0


def started(t: float, job: int, worker: int, attempt: int = 1, name: str | None = None) -> Event:
    return Event("job_started", T0 + t, job, name or f"job{job}", attempt, worker, 100 + worker)


def ended(
    kind: Any,
    t: float,
    job: int,
    worker: int | None,
    attempt: int = 1,
    error: BaseException | None = None,
    name: str | None = None,
) -> Event:
    pid = None if worker is None else 100 + worker
    return Event(kind, T0 + t, job, name or f"job{job}", attempt, worker, pid, exception=error)


def worker(kind: Any, t: float, wid: int, exitcode: int | None = None) -> Event:
    return Event(kind, T0 + t, worker=wid, pid=100 + wid, exitcode=exitcode)
