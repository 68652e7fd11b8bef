"""What every contender's adapter is: the primitives that the scenarios time, and the errors they raise.

An adapter drives one pool library in one configuration through a few primitives (start, stop, one blocking
call, a batch of async submits, map, imap, a crash-and-recover cycle) that the scenarios in `benchmarks._run`
time. The adapters (`benchmarks._adapters`, `benchmarks._ray`) run only in a child runner process; this module
imports no pool library. Every pool gets 2 workers.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from benchmarks import _jobs

__all__ = [
    "WAIT_S",
    "WORKERS",
    "Adapter",
    "Fn",
    "Skip",
    "Unsupported",
    "Where",
    "expect_failure",
    "mp_chunksize",
    "wait_all",
]

#: Workers in every pool: the machine these numbers come from has 2 cores.
WORKERS = 2

#: A bound on every blocking wait inside a child, so that even without the harness's own timeout a lost
#: job ends the child with an error instead of a hang.
WAIT_S = 120.0

Fn = Callable[..., Any]
#: What `benchmarks._jobs.where` returns: a worker's pid and when the job started there.
Where = tuple[int, float]


class Skip(Exception):
    """The contender cannot run here (a package or a backend is missing); reported as skipped."""


class Unsupported(Exception):
    """The contender has no meaningful way to run this scenario."""


def mp_chunksize(n: int) -> int:
    """The chunksize `multiprocessing.Pool.map` picks, used for libraries that have no automatic one."""
    chunksize, extra = divmod(n, WORKERS * 4)
    return max(1, chunksize + (1 if extra else 0))


def wait_all(futures: Iterable[cf.Future[Any]]) -> list[Any]:
    """The results of `futures`, in order, each waited for at most `WAIT_S`."""
    return [f.result(timeout=WAIT_S) for f in futures]


class Adapter:
    """One pool library in one configuration, driven through a handful of primitives (child process only)."""

    def open(self) -> None:
        """Start the pool."""
        raise NotImplementedError

    def close(self) -> None:
        """Shut the pool down gracefully and wait for its workers."""
        raise NotImplementedError

    def call(self, fn: Fn, *args: Any) -> Any:
        """Run one job and block until its result is back."""
        raise NotImplementedError

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Submit one async job per argument tuple, then wait for all the results."""
        raise NotImplementedError

    def tiny_variants(self) -> dict[str, Callable[[Sequence[tuple[Any, ...]]], object]]:
        """The ways this library offers to submit one job asynchronously; "" is the main one."""
        return {"": lambda args: self.submit_all(_jobs.noop, args)}

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        """map with the library's automatic chunksize."""
        raise NotImplementedError

    def imap(self, fn: Fn, items: Iterator[int], chunksize: int) -> Iterator[Any]:
        """Lazy, ordered imap."""
        raise Unsupported("no lazy imap")

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        """Submit `crash` (writing its time to `stamp`), wait until it fails, then run one `where` job.

        Returns:
            The crashed job's error type name, and the following job's pid and start time.
        """
        raise Unsupported("no crash handling")

    def warm(self) -> None:
        """Run a few jobs so that every worker is up and has imported the job module."""
        self.submit_all(_jobs.noop, [()] * (4 * WORKERS))
        self.call(_jobs.noop)


def expect_failure(exc: BaseException | None, *type_names: str) -> str:
    """Check that a crashed job failed with one of the expected errors (by class name anywhere in the MRO)."""
    if exc is None:
        raise AssertionError("the crashing job succeeded")
    names = {c.__name__ for c in type(exc).__mro__}
    if not names.intersection(type_names):
        raise AssertionError(f"the crashing job failed with {type(exc).__name__}: {exc}")
    return type(exc).__name__
