"""`TimerHeap`: things due at a time, earliest first.

One structure for every clock in the parent: the event thread's delayed retries, the process backend's job
deadlines and the Dask backend's. Not thread-safe: each heap is owned by one thread (or guarded by its owner's
lock). Times are `time.monotonic` seconds.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

__all__ = ["TimerHeap"]

T = TypeVar("T")


class TimerHeap(Generic[T]):
    """Items keyed by the time they are due; ties keep insertion order."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, when: float, item: T) -> None:
        """Make ``item`` due at ``when``."""
        heapq.heappush(self._heap, (when, next(self._seq), item))

    def next_due(self) -> float | None:
        """When the earliest item is due, or None when there is none."""
        return self._heap[0][0] if self._heap else None

    def wait_time(self, now: float) -> float | None:
        """Seconds from ``now`` until the earliest item is due (0 when overdue), or None when there is none."""
        return max(0.0, self._heap[0][0] - now) if self._heap else None

    def pop_due(self, now: float) -> list[T]:
        """Remove and return every item due at or before ``now``, earliest first."""
        heap = self._heap
        due: list[T] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        return due

    def clear(self) -> None:
        self._heap.clear()
