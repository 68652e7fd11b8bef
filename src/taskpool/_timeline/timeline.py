"""`Timeline`: a picture of a run, as data, as a self-contained HTML page, and as a PNG.

A `Timeline` is an immutable snapshot, made on the thread that asks for it (`TaskPool.timeline`, or
`Timeline.from_events`). Saving it runs on that thread too: the HTML page is written by hand (inline SVG and
CSS, no network), the PNG with matplotlib, imported only when a PNG is asked for.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .model import NO_WORKER, TimelineAttempt, TimelineWorker, build
from .record import mark

if TYPE_CHECKING:
    from .._core.events import Event
    from .model import Mark

__all__ = ["Timeline"]


@dataclass(frozen=True)
class Timeline:
    """Which worker ran which job when, how each attempt ended, and how busy each worker was.

    Made by `TaskPool.timeline` (for a pool made with ``timeline=True``) or `Timeline.from_events`. Times
    are seconds from when recording began (the pool's creation), as the parent learned of each event: within
    a few milliseconds of when it happened in the worker (process workers send their news in batches, every
    2 ms at most while a job runs).

    Attributes:
        backend: the pool's backend (``"process"``, ``"thread"``, ``"inline"``, ``"dask"``).
        size: the pool's number of workers.
        started_at: the `time.time()` of second 0.
        duration: seconds from second 0 to the last event (or to when the timeline was taken, while an attempt
            is still running).
        attempts: every attempt that began, by start time.
        workers: every worker seen, by start time; a worker that replaced one that exited shares its lane.
    """

    backend: str
    size: int
    started_at: float
    duration: float
    attempts: tuple[TimelineAttempt, ...]
    workers: tuple[TimelineWorker, ...]

    @classmethod
    def _from_marks(
        cls,
        marks: Iterable[Mark],
        *,
        backend: str,
        size: int,
        origin: float,
        halted: float | None = None,
    ) -> Timeline:
        """The timeline of recorded marks (see `taskpool._timeline.record`); ``halted``: when the pool was
        terminated, if it was."""
        now = time.time() if halted is None else halted
        attempts, workers, duration = build(marks, origin, now, halted=halted is not None)
        return cls(backend, size, origin, duration, tuple(attempts), tuple(workers))

    @classmethod
    def from_events(
        cls,
        events: Iterable[Event],
        *,
        backend: str = "process",
        size: int | None = None,
        started_at: float | None = None,
    ) -> Timeline:
        """The timeline of events recorded by your own handlers (`TaskPool.on`), in the order they came.

        Args:
            events: the events; kinds a timeline does not use are ignored.
            backend: the backend's name, for the labels.
            size: the pool's number of workers (default: the most workers seen alive at once).
            started_at: the `time.time()` of second 0 (default: the first event's time).
        """
        marks = [mark(event) for event in events]
        origin = started_at if started_at is not None else min((m[1] for m in marks), default=0.0)
        timeline = cls._from_marks(marks, backend=backend, size=size or 1, origin=origin)
        return timeline if size else dataclasses.replace(timeline, size=max(1, timeline.lanes))

    @property
    def lanes(self) -> int:
        """How many rows of workers the picture has (one at least, even if no worker was seen)."""
        return 1 + max((w.lane for w in self.workers), default=0)

    def lane_busy(self) -> list[float]:
        """Seconds each lane (row of workers) spent running attempts."""
        busy = [0.0] * self.lanes
        for worker in self.workers:
            busy[worker.lane] += worker.busy
        return busy

    def utilisation(self) -> list[float]:
        """The share of the run each lane (row of workers) spent running attempts, from 0 to 1."""
        if self.duration <= 0:
            return [0.0] * self.lanes
        return [min(1.0, busy / self.duration) for busy in self.lane_busy()]

    @property
    def overall_utilisation(self) -> float:
        """The share of the pool's capacity (its workers over the whole run) spent running attempts."""
        capacity = max(self.size, self.lanes) * self.duration
        return min(1.0, sum(self.lane_busy()) / capacity) if capacity > 0 else 0.0

    def counts(self) -> dict[str, int]:
        """How many jobs and attempts, how many attempts were retried, and how many jobs ended each way.

        The keys: ``jobs``, ``attempts``, ``retried``, and each outcome of a job's last attempt
        (``succeeded``, ``failed``, ``crashed``, ...), present when some job ended that way. A backup copy is
        not an attempt; ``backups`` counts them.
        """
        last: dict[int, TimelineAttempt] = {}
        # By start time: a later attempt, or a backup copy, comes later. The copy tells how its attempt ended
        # only where the first copy did not: it was stopped (the backup won), or its worker died and the
        # backup ran on.
        for attempt in self.attempts:
            known = last.get(attempt.job_id)
            if (
                attempt.backup
                and known is not None
                and known.attempt == attempt.attempt
                and not (
                    known.outcome == "cancelled"
                    or (known.outcome == "crashed" and not known.retried)
                )
            ):
                continue
            last[attempt.job_id] = attempt
        counts = {
            "jobs": len(last),
            "attempts": sum(not a.backup for a in self.attempts),
            "retried": sum(a.retried for a in self.attempts if not a.backup),
            "backups": sum(a.backup for a in self.attempts),
        }
        for attempt in last.values():
            counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
        return counts

    def lane_label(self, lane: int) -> str:
        """The row's name in the picture: the workers it holds, as tooltips and errors name them.

        ``worker 2`` (process), ``worker 2, 5`` (worker 5 replaced worker 2 there), ``thread 1``,
        ``caller`` (inline), a Dask worker's host and port, or ``no worker``.
        """
        if lane == NO_WORKER:
            return "no worker"
        if self.backend == "inline":
            return "caller"
        ids = [w.worker for w in self.workers if w.lane == lane]
        if not ids:
            return "no worker yet"
        if isinstance(ids[0], str):
            address = ids[0].split("://")[-1]
            return address if len(ids) == 1 else f"{address} +{len(ids) - 1}"
        kind = "thread" if self.backend == "thread" else "worker"
        shown = ", ".join(str(i) for i in ids[:2])
        return f"{kind} {shown}" + (f" +{len(ids) - 2}" if len(ids) > 2 else "")

    def to_html(self, title: str | None = None) -> str:
        """The picture as one self-contained HTML page (inline SVG and CSS, no network)."""
        from .html import render_html

        return render_html(self, title)

    def save_html(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Write the HTML page (`to_html`) to ``path``, replacing it; returns the path."""
        target = Path(path)
        target.write_text(self.to_html(title), encoding="utf-8")
        return target

    def save_png(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Draw the picture into a PNG file at ``path``, replacing it; returns the path.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'taskpool-py[timeline]'``).
        """
        from .png import render_png

        target = Path(path)
        render_png(self, target, title)
        return target
