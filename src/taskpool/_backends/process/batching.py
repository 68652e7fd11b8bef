"""The batching policy of the process backend: how many jobs a worker may hold, and how to share them out.

Pure: no I/O, no threads, no clock. The scheduler thread owns the one `Batching` of a backend and feeds it the
durations workers measure; `share` splits what is pending over the workers with room.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..._core.job import Job

__all__ = [
    "MAX_INFLIGHT",
    "MAX_KINDS",
    "MIN_INFLIGHT",
    "PIPELINE_BELOW",
    "QUEUED_WORK",
    "START_INFLIGHT",
    "Batching",
    "Batchings",
    "inflight_limit",
    "kind_of",
    "share",
    "workers_to_start",
]

# How much work (in seconds of measured job time) may wait in one worker's queue. More: fewer round trips for
# tiny jobs; less: a better spread of long jobs over workers, and less work to redo after a crash.
QUEUED_WORK = 0.005
# Bounds on jobs in flight per worker; the first jobs of a pool go out two per worker until durations are known.
MIN_INFLIGHT, START_INFLIGHT, MAX_INFLIGHT = 1, 2, 1024
# Jobs shorter than this keep a second job queued behind them in the worker, so that the worker does not sit
# out the round trip (its result to the parent, the next job back) between two jobs: for a 10 ms map chunk
# that round trip is a tenth of the time. Longer jobs go one at a time: the round trip is then noise, and a
# job queued behind a long one could wait while another worker idles.
PIPELINE_BELOW = 0.05
# The weight of the newest duration in the moving average. More: the limit follows a change of job size
# sooner; less: one odd job moves it less.
NEWEST_WEIGHT = 0.2
_OLD_WEIGHT = 1.0 - NEWEST_WEIGHT
# How many kinds of jobs (function and job kind) keep a policy of their own; past it, the oldest is forgotten.
MAX_KINDS = 256
# Durations are floored here before dividing: a job measured at 0 s must not make the limit infinite.
_SHORTEST = 1e-7


def inflight_limit(average: float) -> int:
    """How many jobs a worker may hold when a job takes ``average`` seconds."""
    floor = 2 if average < PIPELINE_BELOW else MIN_INFLIGHT
    return max(floor, min(MAX_INFLIGHT, int(QUEUED_WORK / max(average, _SHORTEST))))


def share(pending: int, workers_left: int, room: int) -> int:
    """How many of ``pending`` jobs to give the next of ``workers_left`` workers, which has ``room`` for more.

    An even share (rounded up) of what is pending, so that a short queue spreads over the idle workers; never
    more than the worker's room (which may be 0 or less: then 0).
    """
    return max(0, min(room, -(-pending // workers_left)))


def workers_to_start(size: int, running: int, idle: int, pending: int) -> int:
    """How many workers to start, with ``running`` of at most ``size`` up (``idle`` of them with no job) and
    ``pending`` jobs waiting.

    One for each job that would otherwise wait behind another: a pool that gets one job starts one process,
    not all of them, and two jobs never share a worker while one is missing.
    """
    return max(0, min(size - running, pending - idle))


class Batching:
    """The moving average of job durations and the in-flight limit per worker it implies."""

    __slots__ = ("average", "limit")

    def __init__(self) -> None:
        #: The moving average of job durations in seconds; None until one is known.
        self.average: float | None = None
        #: How many jobs one worker may hold now.
        self.limit = START_INFLIGHT

    def observe(self, durations: Iterable[float]) -> None:
        """Take the durations of jobs that ended (in the order they ended) into the average and the limit."""
        average = self.average
        for duration in durations:
            average = (
                duration if average is None else _OLD_WEIGHT * average + NEWEST_WEIGHT * duration
            )
        if average is not None and average is not self.average:
            self.average = average
            self.limit = inflight_limit(average)

    def room(self, inflight: int, assigned: int, max_tasks: int | None) -> int:
        """How many more jobs a worker may take: it holds ``inflight`` and was given ``assigned`` in all.

        A worker retired after ``max_tasks`` jobs takes no more than it has left; may be 0 or less.
        """
        room = self.limit - inflight
        if max_tasks is not None:
            room = min(room, max_tasks - assigned)
        return room


def kind_of(job: Job) -> tuple[int, int]:
    """What a job's duration is measured with: its function (the key it travels under) and its job kind.

    A map chunk and a lone call of one function take different times; two functions, unrelated times.
    """
    payload = job.payload  # None only for a job no backend pickled (made by hand)
    return (payload[0][0] if payload is not None else -1, job.kind)


class Batchings:
    """One `Batching` per kind of job (`kind_of`): the durations of one function say nothing of another's.

    Were they averaged together, a burst of long jobs that follows a map of tiny ones would be shared out by
    the tiny jobs' limit (up to MAX_INFLIGHT each), and a worker that meets a stalled job would sit on a
    hundred jobs while the others idle. A kind not seen yet starts at START_INFLIGHT.
    """

    __slots__ = ("_by_kind", "_fresh")

    def __init__(self) -> None:
        self._by_kind: dict[tuple[int, int], Batching] = {}
        # The policy of kinds with no duration yet: never observed, so always at START_INFLIGHT.
        self._fresh = Batching()

    def of(self, kind: tuple[int, int]) -> Batching:
        """The policy of ``kind`` (read-only use: a kind not seen yet shares the fresh policy)."""
        return self._by_kind.get(kind, self._fresh)

    def observe(self, kind: tuple[int, int], durations: Iterable[float]) -> None:
        """Take durations of jobs of ``kind`` that ended, in the order they ended."""
        policy = self._by_kind.get(kind)
        if policy is None:
            if len(self._by_kind) >= MAX_KINDS:
                del self._by_kind[next(iter(self._by_kind))]
            policy = self._by_kind[kind] = Batching()
        policy.observe(durations)
