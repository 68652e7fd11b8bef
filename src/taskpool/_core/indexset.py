"""`IndexSet`: the positions of an input that an earlier run finished, compact when they are mostly a prefix.

What ``taskpool run --resume`` and a checkpointed map skip. Pure logic; a set is filled by one thread before
a run starts and only read (``in``) afterwards, so it needs no lock.
"""

from __future__ import annotations

__all__ = ["IndexSet"]


class IndexSet:
    """A set of indices (>= 0), compact when they are mostly consecutive from 0 (output of an earlier run)."""

    def __init__(self) -> None:
        self.floor = 0  # every index below it is in the set
        self.above: set[int] = set()

    def add(self, index: int) -> None:
        """Add ``index`` (>= 0), in any order; adding one twice changes nothing."""
        if index < self.floor:
            return
        self.above.add(index)
        while self.floor in self.above:
            self.above.remove(self.floor)
            self.floor += 1

    def __contains__(self, index: int) -> bool:
        return index < self.floor or index in self.above

    def __len__(self) -> int:
        return self.floor + len(self.above)

    def count_below(self, stop: int) -> int:
        """How many indices of the set are below ``stop`` (the inputs of a range of ``stop`` it covers)."""
        return min(self.floor, max(stop, 0)) + sum(1 for i in self.above if i < stop)
