"""A joblib parallel backend that runs joblib's batches on a `TaskPool`.

Importing this module registers the backend under the name ``"taskpool"`` (joblib's
`register_parallel_backend`); importing `taskpool` itself does not, so it stays free of side effects::

    import joblib
    import taskpool.joblib  # registers the "taskpool" backend

    with joblib.parallel_config(backend="taskpool", n_jobs=2, timeout=30):
        results = joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(10))

What it adds to joblib's own process backend (loky): a worker that dies fails only the batch it was running,
with `WorkerCrashedError`, and the pool replaces the worker and goes on (loky breaks the whole call); and the
per-job options of taskpool, ``timeout`` and ``retry``, given as backend options. The backend makes one pool
of ``n_jobs`` workers when a `joblib.Parallel` call starts (or a ``with Parallel(...)`` block is entered) and
shuts it down when the call ends.

Inside a worker a nested `joblib.Parallel` never starts a process pool: by default it runs on threads
(joblib's nested backend), and if the ``"taskpool"`` backend is asked for there, the loop runs sequentially.

Threads and processes: the backend's methods run in the thread that drives the `joblib.Parallel` call; the
callbacks joblib attaches to each future run on the pool's event thread; `_run_batch` runs in the workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import joblib as _joblib
from joblib.parallel import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
    register_parallel_backend,
)

from ._core.job import check_timeout
from ._core.retry import Retry
from ._pool.cpus import usable_cpus
from ._pool.pool import TaskPool

if TYPE_CHECKING:
    from ._core.future import JobFuture
    from ._pool.submitter import PoolView

__all__ = ["BACKEND_NAME", "TaskpoolBackend"]

BACKEND_NAME = "taskpool"
"""The name the backend is registered under: ``joblib.parallel_config(backend="taskpool")``."""

# The joblib versions whose custom-backend API this module is written and tested against.
_SUPPORTED = ((1, 3), (2, 0))
_SUPPORTED_TEXT = "joblib>=1.3,<2"


def _check_joblib_version(version: str) -> None:
    """Raise ImportError unless ``version`` is in the supported range."""
    match = re.match(r"(\d+)\.(\d+)", version)
    found = (int(match[1]), int(match[2])) if match else None
    if found is None or not _SUPPORTED[0] <= found < _SUPPORTED[1]:
        raise ImportError(
            f"taskpool.joblib supports {_SUPPORTED_TEXT}, but joblib {version} is installed; "
            f'install a supported version with: pip install "taskpool[joblib]"'
        )


_check_joblib_version(_joblib.__version__)

# What `joblib.Parallel` hands every backend's `configure` besides the backend's own options. They are
# about loky's and multiprocessing's memory mapping and process start; this backend has no use for them.
_JOBLIB_KWARGS = frozenset(
    {"max_nbytes", "temp_folder", "mmap_mode", "verbose", "context", "prefer", "require"}
)


def _run_batch(batch: Callable[[], Any]) -> Any:
    """Run one joblib batch (a worker of the pool)."""
    return batch()


def _options(where: str, options: dict[str, Any]) -> dict[str, Any]:
    """Check the backend's own options; refuse unknown ones, naming the backend."""
    unknown = sorted(set(options) - {"timeout", "retry", "start_method"})
    if unknown:
        raise TypeError(
            f"the {BACKEND_NAME!r} joblib backend got unexpected option(s) {', '.join(unknown)} in "
            f"{where}; it takes timeout, retry and start_method"
        )
    if "timeout" in options:
        check_timeout(options["timeout"])
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, Retry):
        raise TypeError(
            f"the {BACKEND_NAME!r} joblib backend takes a taskpool.Retry as retry, not {retry!r}"
        )
    return options


class TaskpoolBackend(AutoBatchingMixin, ParallelBackendBase):  # type: ignore[misc]  # joblib has no hints
    """joblib's parallel backend ``"taskpool"``: each batch of a `joblib.Parallel` call is one taskpool job.

    joblib makes the backend from its name; options given to `joblib.parallel_config` (or
    `joblib.parallel_backend`) besides joblib's own reach this constructor, and options given to
    `joblib.Parallel` reach `configure`.

    Args:
        timeout: the most seconds one batch may run; a batch past it fails with `JobTimeoutError` and its
            worker is replaced. joblib groups quick tasks into batches (``batch_size="auto"`` aims at batches
            of 0.2 to 2 seconds), so the limit is on a batch, not on one task.
        retry: a `Retry` policy for each batch (``on_crash=True`` also retries a batch whose worker died).
        start_method: the pool's start method (see `TaskPool`).
        nesting_level: set by joblib.
        inner_max_num_threads: set by joblib; this backend does not take it.

    Raises:
        TypeError: an option this backend does not know.
    """

    supports_retrieve_callback = True
    supports_return_generator = True
    supports_timeout = True
    supports_inner_max_num_threads = False
    supports_sharedmem = False
    uses_threads = False

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        *,
        timeout: float | None = None,
        retry: Retry | None = None,
        start_method: str | None = None,
        **unexpected: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        options = {"timeout": timeout, "retry": retry, "start_method": start_method, **unexpected}
        self._options = _options("the backend's constructor", options)
        self._pool: TaskPool | None = None
        self._view: PoolView | None = None
        self._running: set[JobFuture[Any]] = set()
        # Guards _running: the caller's thread adds and reads, the event thread's callbacks discard.
        self._running_lock = threading.Lock()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many batches run at once: ``n_jobs``, with negative values counted back from the CPUs.

        In a daemonic process (a taskpool worker, say), which may not start processes, it is 1: the loop
        then runs sequentially there.
        """
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None or multiprocessing.current_process().daemon:
            return 1
        if n_jobs < 0:
            return max(usable_cpus() + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int | None = 1, parallel: Any = None, **kwargs: Any) -> int:
        """Start a pool of ``n_jobs`` workers for one `joblib.Parallel` call and return ``n_jobs``.

        With one job joblib's sequential backend takes over, as it does for loky.
        """
        options = {**self._options}
        options.update(
            _options("Parallel()", {k: v for k, v in kwargs.items() if k not in _JOBLIB_KWARGS})
        )
        n = self.effective_n_jobs(n_jobs)
        if n == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._shutdown()
        self._pool = TaskPool(n, start_method=options.get("start_method"))
        self._view = self._pool.options(timeout=options.get("timeout"), retry=options.get("retry"))
        return n

    def submit(
        self, func: Callable[[], Any], callback: Callable[[Any], object] | None = None
    ) -> JobFuture[Any]:
        """Run one batch on the pool; joblib's ``callback`` runs on the pool's event thread once it ends."""
        if self._view is None:
            raise RuntimeError(f"the {BACKEND_NAME!r} joblib backend was not configured")
        future = self._view.submit(_run_batch, func)
        with self._running_lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def apply_async(
        self, func: Callable[[], Any], callback: Callable[[Any], object] | None = None
    ) -> JobFuture[Any]:
        """What joblib versions before `submit` call."""
        return self.submit(func, callback)

    def retrieve_result_callback(self, out: JobFuture[Any]) -> Any:
        """The batch's results, or its error (`WorkerCrashedError`, `JobTimeoutError`, the job's own)."""
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A batch failed: cancel the batches not yet begun and stop the running ones.

        Stopping a running batch replaces its worker; the pool goes on, so the backend is ready either way.
        """
        with self._running_lock:
            running = list(self._running)
        for future in running:
            future.stop()

    def terminate(self) -> None:
        """The `joblib.Parallel` call is over: shut its pool down."""
        self._shutdown()
        self.reset_batch_stats()

    def _forget(self, future: cf.Future[Any]) -> None:
        with self._running_lock:
            self._running.discard(cast("JobFuture[Any]", future))

    def _shutdown(self) -> None:
        pool, self._pool, self._view = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


register_parallel_backend(BACKEND_NAME, TaskpoolBackend)
