"""`Job` (one submitted call, parent side) and `JobOptions` (per-job settings).

A `Job` lives in the parent from `submit` until its future is completed. The caller thread that submits it
creates it; afterwards the backend's threads and the event thread read it, and only the event thread changes
``attempt`` and ``started`` (when it decides on a retry). It is not sent to workers: a backend sends what the
worker needs (function, arguments, a sequence number).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

from .._runtime.attempt import JobKind
from .backup import Median, check_backup_after

if TYPE_CHECKING:
    from .._runtime.seeding import SeedKey

if TYPE_CHECKING:
    from .future import JobFuture
    from .retry import Retry

__all__ = ["UNSET", "Job", "JobKind", "JobOptions", "Unset", "check_timeout", "job_name"]


class Unset(enum.Enum):
    """The type of `UNSET`: "this option was not given" (None means "no limit" for some options)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: The default of keyword arguments whose None has a meaning of its own ("keep what was set").
UNSET: Final[Literal[Unset.UNSET]] = Unset.UNSET


def check_timeout(timeout: float | None) -> float | None:
    """Validate a timeout in seconds (None = no timeout); raise ValueError with what to write instead."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(
            f"timeout must be a positive number of seconds (or None for no timeout), not {timeout!r}"
        )
    return None if math.isinf(timeout) else float(timeout)


class JobOptions:
    """Per-job settings; `TaskPool.options` and `@task` make these. Immutable: `merge` makes a changed copy.

    Args:
        timeout: seconds a job may run before it fails with `JobTimeoutError` (None: no limit).
        retry: the `Retry` policy (None: no retries).
        name: the job's name in events, logs and errors (default: the function's qualified name).
        backup_after: seconds (or a `Median` multiple of its function's median duration) after which a
            running job gets a backup copy on another worker; the first outcome wins (None: no backups).
            Setting it declares the job idempotent: it may run twice.
    """

    # A plain slotted class rather than a dataclass: worker processes import this module, and dataclasses
    # (with inspect) would add several milliseconds to every worker's start.
    __slots__ = ("backup_after", "name", "retry", "timed", "timeout")

    timeout: float | None
    retry: Retry | None
    name: str | None
    backup_after: float | Median | None
    #: Whether the job has a clock that runs from its start (a timeout or a backup delay): a backend must
    #: learn when it starts.
    timed: bool

    def __init__(
        self,
        timeout: float | None = None,
        retry: Retry | None = None,
        name: str | None = None,
        backup_after: float | Median | None = None,
    ) -> None:
        if retry is not None:
            from .retry import Retry

            if not isinstance(retry, Retry):
                raise TypeError(f"retry must be a taskpool.Retry, not {retry!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, not {name!r}")
        object.__setattr__(self, "timeout", check_timeout(timeout))
        object.__setattr__(self, "retry", retry)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "backup_after", check_backup_after(backup_after))
        object.__setattr__(self, "timed", self.timeout is not None or self.backup_after is not None)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError(f"JobOptions are immutable; use merge({attr}=...) for a changed copy")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobOptions):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def _fields(self) -> tuple[object, ...]:
        return (self.timeout, self.retry, self.name, self.backup_after)

    def __repr__(self) -> str:
        backup = "" if self.backup_after is None else f", backup_after={self.backup_after!r}"
        return f"JobOptions(timeout={self.timeout!r}, retry={self.retry!r}, name={self.name!r}{backup})"

    def merge(
        self,
        timeout: float | Unset | None = UNSET,
        retry: Retry | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        backup_after: float | Median | Unset | None = UNSET,
    ) -> JobOptions:
        """Return these options with the given fields replaced (fields not given are kept)."""
        if timeout is UNSET and retry is UNSET and name is UNSET and backup_after is UNSET:
            return self
        return JobOptions(
            self.timeout if timeout is UNSET else timeout,
            self.retry if retry is UNSET else retry,
            self.name if name is UNSET else name,
            self.backup_after if backup_after is UNSET else backup_after,
        )


DEFAULT_OPTIONS = JobOptions()


def job_name(fn: Callable[..., Any]) -> str:
    """The default name of a job: its function's qualified name."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


class Job:
    """One submitted call and its bookkeeping (parent side)."""

    __slots__ = (
        "args",
        "attempt",
        "callback",
        "error_callback",
        "first",
        "fn",
        "future",
        "id",
        "kind",
        "kwargs",
        "name",
        "options",
        "payload",
        "seed",
        "size",
        "started",
    )

    def __init__(
        self,
        job_id: int,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: JobOptions,
        future: JobFuture[Any],
        kind: JobKind = JobKind.CALL,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        size: int = 1,
    ) -> None:
        self.id = job_id
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.future = future
        self.kind = kind
        self.callback = callback
        self.error_callback = error_callback
        self.name = future.name
        self.attempt = 1
        self.started = (
            0.0  # time.monotonic() of the first attempt, set when the first attempt is dispatched
        )
        self.size = (
            size  # how many input items the job covers (progress bars count items, not chunks)
        )
        # A backend's cache of the job as it sends it (the process backend: function key and pickled
        # arguments), made by the first attempt and reused by retries.
        # Opaque to the core: each backend keeps what it needs here.
        self.payload: Any = None
        # For a chunk of the map family: the position in the input of the chunk's first item.
        self.first: int | None = None
        # The job's `SeedKey` when its pool has a seed: every attempt (and any copy) of the job sends the
        # same, so a retry draws the same numbers.
        self.seed: SeedKey | None = None

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} attempt {self.attempt}>"
