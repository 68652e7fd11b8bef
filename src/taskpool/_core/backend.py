"""The `Backend` protocol: what a `TaskPool` needs from whatever runs its jobs.

The pool owns the jobs' lives: submission, futures, retries, events and callbacks. A backend owns the workers
and only runs attempts: it takes a `Job` through `submit` and tells the pool what happened through the sink
(see `taskpool._core.reports`). What differs between backends is said here, as attributes, so that the pool
never asks which backend it drives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .backlog import Backlog
    from .job import Job
    from .reports import Sink

__all__ = ["Backend"]

T = TypeVar("T")


class Backend(Protocol):
    """What a `TaskPool` needs from whatever runs its jobs."""

    #: The backend's name as `TaskPool(backend=...)` takes it.
    name: str
    #: The most jobs the backend runs at once.
    workers: int
    #: Whether a job's timeout is enforced (the job is stopped, not only abandoned).
    supports_timeout: bool
    #: Whether a running job can be stopped on request.
    supports_stop: bool
    #: Whether ``backup_after`` is taken: the backend runs backup copies of a job that runs long (process), or
    #: has nothing to back up with and ignores it (inline, which runs one job at a time in the caller).
    supports_backup: bool
    #: The multiprocessing start method of the backend's worker processes, or None when it starts none here.
    start_method: str | None
    #: Why `pool.shared` (a Manager process on this machine) cannot serve this backend's jobs, or None if it can.
    shared_state_unavailable: str | None

    def start(self, sink: Sink, backlog: Backlog | None = None) -> None:
        """Begin taking jobs; report to ``sink`` from now on. Called once, by the pool's constructor.

        ``backlog`` is what the sink holds unhandled: a backend that can make its producers wait (a job thread
        before its next job, a scheduler that stops reading results) does so while it is over its bound.
        """

    def submit(self, job: Job) -> None:
        """Run one attempt of ``job``. Any thread may call it; it must not block on the job.

        Raises:
            TaskpoolError: the job cannot be sent (it does not pickle); that job alone fails.
        """

    def share(self, obj: T) -> T:
        """Make ``obj`` available to every job that takes what this returns as an argument (``pool.share``).

        Raises:
            NotImplementedError: the backend has no way to (the message says what to use instead).
        """

    def shared_array(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A zeroed numpy array that jobs write and the caller reads in place (``pool.shared.array``)."""

    def stop(self, job: Job) -> bool:
        """Stop ``job`` if it is running (report STOPPED). Returns whether a stop was started."""

    def withdraw(self, upto: int) -> None:
        """Skip the jobs up to id ``upto`` that were handed over but have not begun (report SKIPPED each).

        The pool calls it after cancelling every future it could (those of jobs still waiting); a backend
        whose workers hold jobs ahead of the one they run, with futures already running, skips those.
        """

    def want_started(self, enabled: bool) -> None:
        """Whether to report STARTED for every job (someone listens for ``job_started``)."""

    def shutdown(self, wait: bool) -> None:
        """Stop the workers.

        With ``wait``, after the pool has seen every job finish: let workers exit cleanly. Without it
        (terminate): kill them now; jobs still running get no report (the pool cancels their futures).
        Bounded in time either way.
        """
