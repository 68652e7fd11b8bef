"""The `Backend` protocol: what runs jobs for a `TaskPool`.

The pool (the façade) owns the jobs' lives: submission, futures, retries, events and callbacks. A backend owns
the workers and only runs attempts: it takes a `Job` through `submit`, and tells the pool what happened through
the *sink*, a callable that takes a list of reports. Reports are plain tuples ``(kind, job, a, b, c)``, cheap to
make in bulk on a hot path:

=================  =====  ===================  =============  ==========
kind               job    a                    b              c
=================  =====  ===================  =============  ==========
``STARTED``        Job    worker id            worker pid     None
``SUCCEEDED``      Job    the result           worker id      worker pid
``FAILED``         Job    the exception        worker id      worker pid
``STOPPED``        Job    None                 worker id      worker pid
``SKIPPED``        Job    None                 None           None
``WORKER_UP``      None   worker id            worker pid     None
``WORKER_DOWN``    None   worker id            worker pid     exit code
``LOG``            None   logging.LogRecord    worker id      worker pid
``OUTPUT``         None   (stream, text)       worker id      worker pid
``BROKEN``         None   the exception        None           None
=================  =====  ===================  =============  ==========

``SKIPPED`` reports a job whose future was cancelled before it was sent to a worker. ``BROKEN`` says the backend
cannot run jobs any more (an initializer that fails): the pool fails every pending job with it.

Each job the backend takes gets exactly one of SUCCEEDED / FAILED / STOPPED / SKIPPED per attempt, unless the
backend is terminated. The sink is called from the backend's own threads (or, for the inline backend, the
caller's) and must not block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._core.job import Job

__all__ = [
    "BROKEN",
    "FAILED",
    "LOG",
    "OUTPUT",
    "SKIPPED",
    "STARTED",
    "STOPPED",
    "SUCCEEDED",
    "WORKER_DOWN",
    "WORKER_UP",
    "Backend",
    "Report",
    "Sink",
    "make_backend",
]

STARTED = 0
SUCCEEDED = 1
FAILED = 2
STOPPED = 3
SKIPPED = 4
WORKER_UP = 5
WORKER_DOWN = 6
LOG = 7
OUTPUT = 8
BROKEN = 9

Report = tuple[int, "Job | None", Any, Any, Any]
Sink = Callable[[list[Report]], None]


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

    def start(self, sink: Sink) -> None:
        """Begin taking jobs; report to ``sink`` from now on. Called once, by the pool's constructor."""

    def submit(self, job: Job) -> None:
        """Run one attempt of ``job``. Any thread may call it; it must not block on the job."""

    def stop(self, job: Job) -> bool:
        """Stop ``job`` if it is running (report STOPPED). Returns whether a stop was started."""

    def want_started(self, enabled: bool) -> None:
        """Whether to report STARTED for every job (someone listens for ``job_started``)."""

    def shutdown(self, wait: bool) -> None:
        """Stop the workers.

        With ``wait``, after the pool has seen every job finish: let workers exit cleanly. Without it
        (terminate): kill them now; jobs still running get no report (the pool cancels their futures).
        Bounded in time either way.
        """


def make_backend(
    name: str,
    workers: int,
    *,
    start_method: str | None,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    max_tasks_per_worker: int | None,
    capture_output: bool,
    address: Any = None,
) -> Backend:
    """Build the backend named ``name`` (runs in the caller's thread)."""
    if name == "process":
        from .process.scheduler import ProcessBackend

        return ProcessBackend(
            workers,
            start_method=start_method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=max_tasks_per_worker,
            capture_output=capture_output,
        )
    if name == "thread":
        from .thread import ThreadBackend

        return ThreadBackend(workers, initializer=initializer, initargs=initargs)
    if name == "inline":
        from .inline import InlineBackend

        return InlineBackend(initializer=initializer, initargs=initargs)
    if name == "dask":
        from .dask import DaskBackend

        return DaskBackend(workers, address=address, initializer=initializer, initargs=initargs)
    raise ValueError(
        f"unknown backend {name!r}; choose one of 'process' (CPU-bound work), 'thread' (I/O-bound work), "
        "'inline' (debugging) or 'dask' (a Dask cluster)"
    )
