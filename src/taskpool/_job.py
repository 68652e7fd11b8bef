"""`Job` (one submitted call, parent side) and `JobOptions` (per-job settings).

A `Job` lives in the parent from `submit` until its future is completed. The caller thread that submits it
creates it; afterwards the backend's threads and the event thread read it, and only the event thread changes
``attempt`` and ``started`` (when it decides on a retry). It is not sent to workers: a backend sends what the
worker needs (function, arguments, a sequence number).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._future import JobFuture
    from ._retry import Retry

__all__ = ["CALL", "CHUNK", "STARCHUNK", "Job", "JobOptions"]

_UNSET: Any = object()


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


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job settings; `TaskPool.options` and `@task` make these.

    Args:
        timeout: seconds a job may run before it fails with `JobTimeoutError` (None: no limit).
        retry: the `Retry` policy (None: no retries).
        name: the job's name in events, logs and errors (default: the function's qualified name).
    """

    timeout: float | None = None
    retry: Retry | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeout", check_timeout(self.timeout))
        if self.retry is not None:
            from ._retry import Retry

            if not isinstance(self.retry, Retry):
                raise TypeError(f"retry must be a taskpool.Retry, not {self.retry!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string, not {self.name!r}")

    def merge(
        self,
        timeout: float | None = _UNSET,
        retry: Retry | None = _UNSET,
        name: str | None = _UNSET,
    ) -> JobOptions:
        """Return these options with the given fields replaced (fields not given are kept)."""
        changes: dict[str, Any] = {}
        if timeout is not _UNSET:
            changes["timeout"] = timeout
        if retry is not _UNSET:
            changes["retry"] = retry
        if name is not _UNSET:
            changes["name"] = name
        return replace(self, **changes) if changes else self


DEFAULT_OPTIONS = JobOptions()

# Job kinds. CALL runs fn(*args, **kwargs); CHUNK runs [fn(x) for x in args[0]]; STARCHUNK [fn(*x) ...].
CALL = 0
CHUNK = 1
STARCHUNK = 2


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
        "fn",
        "future",
        "id",
        "kind",
        "kwargs",
        "name",
        "options",
        "payload",
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
        kind: int = CALL,
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
        self.payload: Any = None  # a backend's cache of the pickled arguments, reused by retries

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} attempt {self.attempt}>"


def run_here(job: Job) -> Any:
    """Run ``job`` in the calling thread and return its value (the thread and inline backends use this)."""
    from ._logging import current_job

    token = current_job.set((job.id, job.name))  # log records made by the job carry its id
    try:
        if job.kind == CALL:
            return job.fn(*job.args, **job.kwargs)
        if job.kind == CHUNK:
            return list(map(job.fn, job.args[0]))
        return [job.fn(*item) for item in job.args[0]]
    finally:
        current_job.reset(token)
