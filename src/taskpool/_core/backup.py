"""Backup copies of stragglers: the `Median` option, its check, and the window of durations it reads.

``backup_after`` is a per-job option (`JobOptions`): once an attempt has run that long, a backend that can
(the process backend) starts a second copy of it on another worker, and the first outcome wins. It takes a
number of seconds or a `Median`, a multiple of the median duration of the finished jobs of the same function.

Pure code with no threads of its own: caller threads make and check the option, the process backend's
scheduler thread owns each `Durations`. Imported by worker processes through `taskpool._core.job`, so it
imports nothing heavy (the median is computed here, not with `statistics`).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

__all__ = ["MEDIAN_WINDOW", "Durations", "Median", "check_backup_after"]

# How many recent durations of one function the median is taken over. More: steadier against a run of odd
# jobs; fewer: follows a change of job size sooner. Sorting this many costs a few microseconds, and it is done
# only when a new duration has come since the last time.
MEDIAN_WINDOW: Final = 64
# The shortest delay a `Median` gives, in seconds.
_SHORTEST_DELAY: Final = 0.001


class Median:
    """``backup_after=Median(3.0)``: back a job up once it has run 3 times the median of its function's jobs.

    The median is over the most recent finished jobs of the same function (and the same kind: single calls
    and map chunks are counted apart), measured in the workers. Until ``min_samples`` of them have finished,
    no backup is made.

    Args:
        factor: the multiple of the median; a positive number (1.5 to 5 are typical).
        min_samples: how many durations must be known before the median is trusted (at least 1).

    Raises:
        TypeError, ValueError: ``factor`` is not a positive finite number, or ``min_samples`` not a whole
            number >= 1.
    """

    __slots__ = ("factor", "min_samples")

    factor: float
    min_samples: int

    def __init__(self, factor: float, *, min_samples: int = 5) -> None:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise TypeError(
                f"Median(factor) takes a number, the multiple of the median; not {factor!r}"
            )
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(
                f"Median(factor) must be a positive finite number (3.0: three times the median), not {factor!r}"
            )
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
            raise ValueError(
                f"Median(min_samples=) must be a whole number >= 1, not {min_samples!r}"
            )
        object.__setattr__(self, "factor", float(factor))
        object.__setattr__(self, "min_samples", min_samples)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError("Median is immutable; make another one")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Median):
            return NotImplemented
        return (self.factor, self.min_samples) == (other.factor, other.min_samples)

    def __hash__(self) -> int:
        return hash((Median, self.factor, self.min_samples))

    def __repr__(self) -> str:
        extra = "" if self.min_samples == 5 else f", min_samples={self.min_samples}"
        return f"Median({self.factor!r}{extra})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_median, (self.factor, self.min_samples))


def _median(factor: float, min_samples: int) -> Median:
    return Median(factor, min_samples=min_samples)


def check_backup_after(value: float | Median | None) -> float | Median | None:
    """Validate ``backup_after`` (None = no backups); raise with what to write instead."""
    if value is None or isinstance(value, Median):
        return value
    if isinstance(value, str):
        raise TypeError(
            f"backup_after takes seconds or taskpool.Median(factor), not the string {value!r}; for a multiple "
            "of the median duration write backup_after=taskpool.Median(3.0)"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"backup_after must be a number of seconds, a taskpool.Median, or None, not {value!r}"
        )
    if math.isnan(value) or value <= 0:
        raise ValueError(
            f"backup_after must be a positive number of seconds (or None for no backups), not {value!r}"
        )
    return None if math.isinf(value) else float(value)


class Durations:
    """The recent durations of one function's jobs, and their median (the scheduler thread's)."""

    __slots__ = ("_median", "_recent")

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=MEDIAN_WINDOW)
        self._median: float | None = None

    def __len__(self) -> int:
        return len(self._recent)

    def add(self, duration: float) -> None:
        self._recent.append(duration)
        self._median = None

    def median(self) -> float | None:
        """The median of the recent durations (None when there is none); cached until the next `add`."""
        if self._median is None and self._recent:
            ordered = sorted(self._recent)
            middle = len(ordered) // 2
            if len(ordered) % 2:
                self._median = ordered[middle]
            else:
                self._median = (ordered[middle - 1] + ordered[middle]) / 2
        return self._median

    def delay(self, rule: Median) -> float | None:
        """Seconds after its start at which a job backed up by ``rule`` gets its copy (None: not known yet)."""
        if len(self._recent) < rule.min_samples:
            return None
        median = self.median()
        # Floored: a function whose jobs measure 0 s must not have every running job backed up at once.
        return None if median is None else max(rule.factor * median, _SHORTEST_DELAY)
