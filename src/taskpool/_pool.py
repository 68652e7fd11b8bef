"""`TaskPool`: the façade users write against.

The pool owns the life of every job: it makes the `Job` and its `JobFuture` in the caller's thread, hands the
job to its backend, and on its event thread turns the backend's reports into outcomes: a retry (decided here,
in the parent, so it covers crashes and timeouts too), or the final result, with the ``apply_async`` callback,
the event handlers and the future's done-callbacks, in that order. It does not know which backend it drives.

Threads that touch a pool:
- caller threads: `submit` and friends, `close`, `join`, `terminate`, `on`. ``_lock`` guards ``_state`` and the
  registration of new jobs in ``_outstanding``, so that a job is never admitted after `close` has looked.
- the event thread: everything in ``_process``; it alone completes futures and runs user callbacks.
- the backend's own threads, which only call the sink (`EventThread.put`).
No lock is held while user code runs.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import enum
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ._backends import (
    BROKEN,
    FAILED,
    LOG,
    OUTPUT,
    SKIPPED,
    STARTED,
    STOPPED,
    SUCCEEDED,
    WORKER_DOWN,
    WORKER_UP,
    Backend,
    make_backend,
)

# The default backend is imported with the pool, not when the first pool starts: that import is the cost of
# importing taskpool, not of every program's first pool.
from ._core.events import Event, EventKind, EventThread, Handlers
from ._core.future import JobFuture
from ._core.job import _UNSET, CALL, CHUNK, STARCHUNK, Job, JobOptions, check_timeout, job_name
from ._core.retry import Retry
from ._errors import PoolClosedError, TaskpoolError

if TYPE_CHECKING:
    from ._shared import SharedState

__all__ = ["PoolState", "PoolView", "TaskPool"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("taskpool")

_SUBMITTED = (
    100  # a report kind of the pool's own: job_submitted, routed through the event thread for order
)
_TERMINATE = 101  # cancel every outstanding job (terminate)


# imap keeps at most this many jobs per worker in flight: enough to keep workers busy with tiny jobs, few
# enough that the input is read lazily and memory stays flat.
IMAP_WINDOW_PER_WORKER = 256
# map splits its input into this many chunks per worker when no chunksize is given (see TaskPool._chunks).
MAP_CHUNKS_PER_WORKER = 16


class PoolState(enum.Enum):
    """The life of a pool: RUNNING -> CLOSED -> (joined), or -> TERMINATED, or -> BROKEN."""

    RUNNING = "running"
    CLOSED = "closed"
    TERMINATED = "terminated"
    BROKEN = "broken"


_live_pools: weakref.WeakSet[TaskPool] = weakref.WeakSet()
_exit_hook_registered = False
_exit_hook_lock = threading.Lock()


def _terminate_live_pools() -> None:
    """At interpreter exit: stop every pool still open, so no worker outlives the program (atexit)."""
    for pool in list(_live_pools):
        try:
            pool.terminate()
        except Exception:
            log.debug("error while stopping a pool at exit", exc_info=True)


def _register_exit_hook() -> None:
    global _exit_hook_registered
    with _exit_hook_lock:
        if not _exit_hook_registered:
            atexit.register(_terminate_live_pools)
            _exit_hook_registered = True


def _check_chunksize(chunksize: int | None) -> None:
    if chunksize is not None and (
        not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1
    ):
        raise ValueError(
            f"chunksize must be a whole number >= 1 (or None to choose), not {chunksize!r}"
        )


class _Submitter:
    """The job-submitting methods, shared by `TaskPool` and the views that `options` returns."""

    _core: TaskPool
    _opts: JobOptions

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> JobFuture[R]:
        """Submit ``fn(*args, **kwargs)`` and return its future at once (runs in the caller's thread).

        Raises:
            PoolClosedError: the pool is closed or terminated.
            TypeError: ``fn`` is not callable.
        """
        return self._core._submit(fn, args, kwargs, self._opts, CALL, None, None, 1)

    def apply(
        self, fn: Callable[..., R], args: Iterable[Any] = (), kwds: Mapping[str, Any] | None = None
    ) -> R:
        """Run ``fn(*args, **kwds)`` on the pool and return its result, blocking the caller, like `Pool.apply`.

        The job's own exception is raised here as itself, with the worker's traceback as ``__cause__``.
        """
        future: JobFuture[R] = self._core._submit(
            fn, tuple(args), dict(kwds or {}), self._opts, CALL, None, None, 1
        )
        return self._core._wait(future)

    def apply_async(
        self,
        fn: Callable[..., R],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[R], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> JobFuture[R]:
        """Submit ``fn(*args, **kwds)``; like `Pool.apply_async`.

        Exactly one of ``callback`` (with the result) or ``error_callback`` (with the exception) runs, once,
        on the pool's event thread in the parent process, and it has returned before the future's
        ``get()``/``result()`` returns. A callback that raises is logged; the pool goes on.
        """
        for cb in (callback, error_callback):
            if cb is not None and not callable(cb):
                raise TypeError(f"callbacks must be callable, not {cb!r}")
        return self._core._submit(
            fn, tuple(args), dict(kwds or {}), self._opts, CALL, callback, error_callback, 1
        )

    def map(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int | None = None,
        progress: bool | str | Mapping[str, Any] = False,
    ) -> list[R]:
        """Apply ``fn`` to every item and return the results in input order, like `Pool.map`.

        The input is read whole first (as `Pool.map` does; `imap` reads lazily). Items are sent in chunks of
        ``chunksize`` (chosen from the input's length and the worker count when None); chunking never
        changes the results. The first failing job's exception (in input order) is raised here.

        Args:
            progress: True or a description draws a tqdm progress bar on stderr when it is a terminal; a
                mapping is passed to tqdm as keyword arguments (``{"disable": False}`` draws it always).
        """
        return self._core._map(fn, iterable, chunksize, progress, CHUNK, self._opts)

    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        progress: bool | str | Mapping[str, Any] = False,
    ) -> list[R]:
        """Like `map`, but each item is unpacked as the arguments: ``fn(*item)``, like `Pool.starmap`."""
        return self._core._map(fn, iterable, chunksize, progress, STARCHUNK, self._opts)

    def imap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int = 1,
        progress: bool | str | Mapping[str, Any] = False,
    ) -> IMapIterator[R]:
        """Apply ``fn`` lazily: results in input order, the input read only as fast as results are taken.

        At most a bounded number of jobs is in flight, so an endless or huge input runs in constant memory.
        An exception from a job or from the input iterable is raised when its turn comes.
        """
        return IMapIterator(self._core, fn, iterable, chunksize, CHUNK, True, progress, self._opts)

    def imap_unordered(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int = 1,
        progress: bool | str | Mapping[str, Any] = False,
    ) -> IMapIterator[R]:
        """Like `imap`, but results come as they are ready, in any order."""
        return IMapIterator(self._core, fn, iterable, chunksize, CHUNK, False, progress, self._opts)

    def options(
        self,
        *,
        timeout: float | None = _UNSET,
        retry: Retry | None = _UNSET,
        name: str | None = _UNSET,
    ) -> PoolView:
        """A view of the pool whose jobs get these options; the pool itself is unchanged.

        ``pool.options(timeout=2.0, retry=Retry(attempts=3)).submit(fn, x)``

        Raises:
            ValueError: the backend cannot enforce a timeout, or a value is out of range.
        """
        opts = self._opts.merge(timeout=timeout, retry=retry, name=name)
        self._core._check_options(opts)
        return PoolView(self._core, opts)


class PoolView(_Submitter):
    """A pool with other job options, made by `TaskPool.options`. It shares the pool's workers."""

    def __init__(self, core: TaskPool, opts: JobOptions) -> None:
        self._core = core
        self._opts = opts

    def __repr__(self) -> str:
        return f"<PoolView of {self._core!r} with {self._opts}>"


class TaskPool(_Submitter):
    """A pool of workers that runs jobs and gives back typed futures.

    Args:
        workers: how many jobs run at once (worker processes for the process backend). Default: the number
            of CPUs, read when the pool is made.
        backend: ``"process"`` (CPU-bound work; the default), ``"thread"`` (I/O-bound work), ``"inline"``
            (runs each job in the submitting thread; for debugging) or ``"dask"`` (a Dask cluster).
        start_method: ``"forkserver"`` (the default on Linux), ``"spawn"`` or ``"fork"`` (process backend).
            ``fork`` starts fastest but is unsafe once the parent has threads; see the docs.
        initializer: called as ``initializer(*initargs)`` in each worker before it takes jobs.
        initargs: the initializer's arguments.
        max_tasks_per_worker: replace a worker after it has run this many jobs (None: never).
        timeout: the default per-job timeout in seconds (None: no limit).
        retry: the default `Retry` policy (None: no retries).
        max_pending: the most jobs submitted but not finished; `submit` blocks the caller while that many
            are pending, so a producer cannot outrun the workers and exhaust memory (None: no bound).
        capture_output: forward what workers print to the parent line by line (process backend).
        address: the Dask scheduler address, or a ``distributed.Client`` (dask backend).

    Used as a context manager, the pool is closed and joined on exit (jobs finish; nothing is cut short),
    or terminated if the block is left by KeyboardInterrupt.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        backend: str = "process",
        start_method: str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_worker: int | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
        max_pending: int | None = None,
        capture_output: bool = True,
        address: Any = None,
    ) -> None:
        if workers is None:
            workers = os.cpu_count() or 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, not {initializer!r}")
        if max_tasks_per_worker is not None and (
            isinstance(max_tasks_per_worker, bool)
            or not isinstance(max_tasks_per_worker, int)
            or max_tasks_per_worker < 1
        ):
            raise ValueError(
                f"max_tasks_per_worker must be a whole number >= 1 or None, not {max_tasks_per_worker!r}"
            )
        if max_pending is not None and (
            isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1
        ):
            raise ValueError(
                f"max_pending must be a whole number >= 1 or None, not {max_pending!r}"
            )
        if start_method is not None:
            import multiprocessing

            if start_method not in multiprocessing.get_all_start_methods():
                raise ValueError(
                    f"start_method {start_method!r} is not available here; choose one of "
                    f"{multiprocessing.get_all_start_methods()}"
                )
            if backend != "process":
                raise ValueError(f"start_method applies to the process backend, not to {backend!r}")
        self._core = self
        self._opts = JobOptions(timeout=check_timeout(timeout), retry=retry)
        self._backend: Backend = make_backend(
            backend,
            workers,
            start_method=start_method,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=max_tasks_per_worker,
            capture_output=capture_output,
            address=address,
        )
        self._check_options(self._opts)
        self.workers = self._backend.workers
        self._lock = threading.Lock()
        self._state = PoolState.RUNNING
        self._broken: BaseException | None = None
        self._ids = itertools.count(1)
        self._outstanding: dict[int, Job] = {}
        self._drained = threading.Event()
        self._slots = threading.BoundedSemaphore(max_pending) if max_pending is not None else None
        self._handlers = Handlers()
        self._shared: SharedState | None = None
        self._joined = False
        self._stopper = self._stop_future  # bound once: every future gets the same one
        self._events = EventThread(self._process)
        self._backend.start(self._events.put)
        _live_pools.add(self)
        _register_exit_hook()

    def __repr__(self) -> str:
        return f"<TaskPool {self._backend.name} workers={self.workers} {self._state.value}>"

    @property
    def state(self) -> PoolState:
        """The pool's state."""
        return self._state

    @property
    def backend(self) -> str:
        """The name of the backend the pool runs on."""
        return self._backend.name

    @property
    def start_method(self) -> str | None:
        """The multiprocessing start method of the process backend (None for other backends)."""
        return getattr(self._backend, "start_method", None)

    # -- submission (caller threads) -------------------------------------------------------------------
    def _check_options(self, opts: JobOptions) -> None:
        if opts.timeout is not None and not self._backend.supports_timeout:
            raise ValueError(
                f"the {self._backend.name} backend cannot enforce a timeout (a running job cannot be stopped "
                "there); use the process backend for jobs that need one"
            )

    def _closed_error(self) -> BaseException:
        if self._state is PoolState.BROKEN and self._broken is not None:
            return self._broken
        return PoolClosedError(self._state.value)

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: JobOptions,
        kind: int,
        callback: Callable[[Any], object] | None,
        error_callback: Callable[[BaseException], object] | None,
        size: int,
    ) -> JobFuture[Any]:
        if not callable(fn):
            raise TypeError(f"the job's function must be callable, not {fn!r}")
        if opts is not self._opts and opts.timeout is not None:
            self._check_options(opts)
        if self._slots is not None:
            self._acquire_slot()
        # This is the hot path of every submit: keep it lean.
        with self._lock:
            if self._state is not PoolState.RUNNING:
                if self._slots is not None:
                    self._slots.release()
                raise self._closed_error()
            job_id = next(self._ids)
            future: JobFuture[Any] = JobFuture(job_id, opts.name or job_name(fn))
            job = Job(job_id, fn, args, kwargs, opts, future, kind, callback, error_callback, size)
            self._outstanding[job_id] = job
        if size != 1:
            future._items = size
        if opts.retry is not None:
            job.started = time.monotonic()  # what stop_after_delay counts from
        future._stopper = self._stopper
        if "job_submitted" in self._handlers.by_kind:
            self._events.put([(_SUBMITTED, job, None, None, None)])
        try:
            self._backend.submit(job)
        except (
            TaskpoolError
        ) as exc:  # it cannot be sent (it does not pickle): that job fails, nothing else
            self._events.put([(FAILED, job, exc, None, None)])
        return future

    def _acquire_slot(self) -> None:
        assert self._slots is not None
        # Wake now and then to notice a pool closed or terminated by another thread meanwhile.
        while not self._slots.acquire(timeout=0.5):
            if self._state is not PoolState.RUNNING:
                raise self._closed_error()

    def _wait(self, future: JobFuture[T]) -> T:
        """Wait for a future the pool made for a blocking call; Ctrl-C terminates the pool."""
        try:
            return future.result()
        except KeyboardInterrupt:
            self.terminate()
            raise

    def _stop_future(self, future: JobFuture[Any]) -> bool:
        job = self._outstanding.get(future.job_id)
        if job is None or job.future is not future or not self._backend.supports_stop:
            return False
        return self._backend.stop(job)

    def _chunks(self, items: list[Any], chunksize: int | None) -> list[list[Any]]:
        if chunksize is None:
            # About sixteen chunks per worker (multiprocessing.Pool makes four): the parent pickles the next
            # chunks while workers run the first ones, uneven chunks even out, and the serial head (pickling
            # the first chunk) and tail (unpickling the last result) stay short. Measured on 2 workers over
            # 1M tiny items: 4 per worker 5.8-6.7M items/s, 16 per worker 6.4-7.8M, 32 per worker 6.0-7.6M.
            chunksize, extra = divmod(len(items), self.workers * MAP_CHUNKS_PER_WORKER)
            if extra or not chunksize:
                chunksize += 1
        return [items[i : i + chunksize] for i in range(0, len(items), chunksize)]

    def _map_futures(
        self,
        fn: Callable[..., Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        kind: int,
        opts: JobOptions,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> list[JobFuture[list[Any]]]:
        _check_chunksize(chunksize)
        if not callable(fn):
            raise TypeError(f"the job's function must be callable, not {fn!r}")
        if self._state is not PoolState.RUNNING:
            raise self._closed_error()
        items = list(iterable)
        return [
            self._submit(fn, (chunk,), {}, opts, kind, callback, error_callback, len(chunk))
            for chunk in self._chunks(items, chunksize)
        ]

    def _map(
        self,
        fn: Callable[..., Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        progress: bool | str | Mapping[str, Any],
        kind: int,
        opts: JobOptions,
    ) -> list[Any]:
        futures = self._map_futures(fn, iterable, chunksize, kind, opts)
        bar = None
        if progress:
            from ._core.progress import track

            bar = track(futures, progress, total=sum(f._items for f in futures))
        results: list[Any] = []
        try:
            for future in futures:
                chunk: list[Any] = self._wait(future)
                results.extend(chunk)
        finally:
            if bar is not None:
                bar.close()
        return results

    # -- events ----------------------------------------------------------------------------------------
    def on(self, kind: EventKind, handler: Callable[[Event], object]) -> Callable[[], None]:
        """Call ``handler(event)`` on the pool's event thread, in the parent, for each event of ``kind``.

        Returns a function that removes the handler again. Handlers run in the order things happened and
        never concurrently with each other or with callbacks; one that raises is logged and the pool goes on.

        Raises:
            ValueError: ``kind`` is not an event kind (the message lists them).
        """
        self._handlers.add(kind, handler)
        if kind == "job_started":
            self._backend.want_started(True)

        def remove() -> None:
            self.off(kind, handler)

        return remove

    def off(self, kind: EventKind, handler: Callable[[Event], object]) -> bool:
        """Remove a handler added with `on`; returns whether it was there."""
        removed = self._handlers.remove(kind, handler)
        if kind == "job_started" and "job_started" not in self._handlers.by_kind:
            self._backend.want_started(False)
        return removed

    # -- shared state ----------------------------------------------------------------------------------
    @property
    def shared(self) -> SharedState:
        """Shared state (dicts, lists, counters, locks, ...) served by one Manager process, made on first use.

        It stops when the pool is joined or terminated.

        Raises:
            PoolClosedError: the pool is closed.
            TaskpoolError: the backend has no process Manager to serve it (dask: use Dask's Lock,
                Variable and Queue instead).
        """
        if self._shared is None:
            with self._lock:
                if self._state is not PoolState.RUNNING:
                    raise self._closed_error()
                if self._shared is None:
                    if self._backend.name == "dask":
                        raise TaskpoolError(
                            "pool.shared is not available on the dask backend: a Manager process on this "
                            "machine is out of reach of remote workers. Use distributed.Lock, "
                            "distributed.Variable or distributed.Queue instead"
                        )
                    import multiprocessing

                    from ._shared import SharedState

                    self._shared = SharedState(multiprocessing.get_context(self.start_method))
        return self._shared

    # -- lifecycle (caller threads) --------------------------------------------------------------------
    def close(self) -> None:
        """Take no more jobs; those submitted still run. Call `join` next to wait for them."""
        with self._lock:
            if self._state is PoolState.RUNNING:
                self._state = PoolState.CLOSED
        if not self._outstanding:
            self._drained.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted job has finished and the workers have exited.

        Returns False if ``timeout`` seconds passed first (the pool is then still finishing).

        Raises:
            ValueError: the pool is still running: call `close` (or `terminate`) first.
        """
        if self._state is PoolState.RUNNING:
            raise ValueError("join() needs close() or terminate() first: the pool still takes jobs")
        if threading.get_ident() == self._events.ident:
            raise RuntimeError(
                "join() cannot be called from a callback or event handler of the same pool"
            )
        if self._joined:
            return True
        if not self._drained.wait(timeout):
            return False
        self._shutdown(wait=True)
        return True

    def terminate(self) -> None:
        """Stop now: kill the workers, cancel every job that has not finished. Bounded in time."""
        with self._lock:
            if self._joined or self._state is PoolState.TERMINATED:
                return
            self._state = PoolState.TERMINATED
        self._backend.shutdown(wait=False)
        self._events.put([(_TERMINATE, None, None, None, None)])
        self._shutdown(wait=False)

    def _shutdown(self, wait: bool) -> None:
        with self._lock:
            if self._joined:
                return
            self._joined = True
        if wait:
            self._backend.shutdown(wait=True)
        self._events.stop(10.0)
        if self._shared is not None:
            self._shared.shutdown()
        _live_pools.discard(self)

    def __enter__(self) -> TaskPool:
        from ._task import enter_pool

        enter_pool(self)  # inside the block, @task functions submit to this pool
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        from ._task import exit_pool

        exit_pool(self)
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # Ctrl-C or SystemExit: the user wants out now, not after the jobs finish
            return
        self.close()
        self.join()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is PoolState.RUNNING and not getattr(
            self, "_joined", True
        ):
            with contextlib.suppress(Exception):
                self.terminate()

    # -- concurrent.futures.Executor -------------------------------------------------------------------
    def as_executor(self) -> cf.Executor:
        """This pool as a `concurrent.futures.Executor` (for ``loop.run_in_executor`` and the like).

        Its ``shutdown(wait=True)`` closes and joins the pool.
        """
        return _ExecutorView(self)

    # -- the event thread ------------------------------------------------------------------------------
    def _process(self, reports: list[Any]) -> None:
        """Turn backend reports into outcomes (event thread only)."""
        by_kind = self._handlers.by_kind
        for kind, job, a, b, c in reports:
            if kind == SUCCEEDED:
                future = job.future
                future.attempts = job.attempt
                if "job_succeeded" in by_kind:
                    self._emit("job_succeeded", job, worker=b, pid=c, result=a)
                if job.callback is not None:
                    self._run_callback(job.callback, a, job)
                if not future.done():
                    future.set_result(a)
                self._finished(job)
            elif kind == FAILED:
                if b is not None and "job_started" in by_kind and job.future.attempts < job.attempt:
                    # A worker that died at once had no time to send its start report, yet the job ran there:
                    # keep the promise that job_started comes before the terminal event.
                    job.future.attempts = job.attempt
                    self._emit("job_started", job, worker=b, pid=c)
                self._failed(job, a, b, c)
            elif kind == STARTED:
                job.future.attempts = job.attempt
                if "job_started" in by_kind:
                    self._emit("job_started", job, worker=a, pid=b)
            elif kind == _SUBMITTED:
                self._emit("job_submitted", job)
            elif kind in (STOPPED, SKIPPED):
                job.future._force_cancel()
                if "job_cancelled" in by_kind:
                    self._emit("job_cancelled", job, worker=b, pid=c)
                self._finished(job)
            elif kind == LOG:
                logger = logging.getLogger(a.name)
                if logger.isEnabledFor(a.levelno):
                    logger.handle(a)
            elif kind == OUTPUT:
                stream = sys.stdout if a[0] == "stdout" else sys.stderr
                if stream is not None:
                    stream.write(a[1])
                    stream.flush()
            elif kind == WORKER_UP:
                if "worker_started" in by_kind:
                    self._handlers.emit(Event("worker_started", time.time(), worker=a, pid=b))
            elif kind == WORKER_DOWN:
                if "worker_exited" in by_kind:
                    self._handlers.emit(
                        Event("worker_exited", time.time(), worker=a, pid=b, exitcode=c)
                    )
            elif kind == BROKEN:
                self._break(a)
            elif kind == _TERMINATE:
                for job in list(self._outstanding.values()):
                    job.future._force_cancel()
                    if "job_cancelled" in by_kind:
                        self._emit("job_cancelled", job)
                    self._finished(job)

    def _emit(
        self,
        kind: EventKind,
        job: Job,
        *,
        worker: int | None = None,
        pid: int | None = None,
        result: Any = None,
        exception: BaseException | None = None,
        delay: float | None = None,
    ) -> None:
        self._handlers.emit(
            Event(
                kind,
                time.time(),
                job.id,
                job.name,
                job.attempt,
                worker,
                pid,
                result,
                exception,
                None,
                delay,
            )
        )

    def _run_callback(self, callback: Callable[[Any], object], arg: Any, job: Job) -> None:
        try:
            callback(arg)
        except Exception:
            log.exception("the callback of job %s (%r) raised; the pool goes on", job.id, job.name)

    def _failed(self, job: Job, error: BaseException, worker: int | None, pid: int | None) -> None:
        future = job.future
        policy = job.options.retry
        if policy is not None and self._state is not PoolState.TERMINATED and not future.done():
            delay = policy.decide(job.attempt, error, job.started)
            if delay is not None and self._broken is None:
                if "job_retrying" in self._handlers.by_kind:
                    self._emit(
                        "job_retrying", job, worker=worker, pid=pid, exception=error, delay=delay
                    )
                job.attempt += 1
                if delay > 0:
                    self._events.call_later(delay, lambda: self._resubmit(job))
                else:
                    self._resubmit(job)
                return
        future.attempts = job.attempt
        if "job_failed" in self._handlers.by_kind:
            self._emit("job_failed", job, worker=worker, pid=pid, exception=error)
        if job.error_callback is not None:
            self._run_callback(job.error_callback, error, job)
        if not future.done():
            future.set_exception(error)
        self._finished(job)

    def _resubmit(self, job: Job) -> None:
        if self._state is PoolState.TERMINATED or job.future.done():
            self._finished(job)
            return
        try:
            self._backend.submit(job)
        except TaskpoolError as exc:
            self._failed(job, exc, None, None)

    def _break(self, error: BaseException) -> None:
        with self._lock:
            self._broken = error
            if self._state is PoolState.RUNNING:
                self._state = PoolState.BROKEN
        for job in list(self._outstanding.values()):
            self._failed(job, error, None, None)

    def _finished(self, job: Job) -> None:
        if self._outstanding.pop(job.id, None) is None:
            return
        if self._slots is not None:
            self._slots.release()
        if self._state is not PoolState.RUNNING and not self._outstanding:
            self._drained.set()


class IMapIterator(Generic[R]):
    """The iterator `imap` and `imap_unordered` return (consumed in the caller's thread).

    It submits a bounded window of jobs, and one more each time a result is taken, so the input is read only
    as fast as results are consumed.
    """

    def __init__(
        self,
        pool: TaskPool,
        fn: Callable[..., R],
        iterable: Iterable[Any],
        chunksize: int,
        kind: int,
        ordered: bool,
        progress: bool | str | Mapping[str, Any],
        opts: JobOptions,
    ) -> None:
        _check_chunksize(chunksize)
        if not callable(fn):
            raise TypeError(f"the job's function must be callable, not {fn!r}")
        if pool._state is not PoolState.RUNNING:
            raise pool._closed_error()
        self._pool = pool
        self._fn = fn
        self._input = iter(iterable)
        self._chunksize = chunksize
        self._kind = kind
        self._ordered = ordered
        self._opts = opts
        # At least a few chunks per worker, so that a worker has its next chunk before it finishes one.
        self._window = max(4 * pool.workers, pool.workers * IMAP_WINDOW_PER_WORKER // chunksize)
        self._futures: deque[JobFuture[list[R]]] = deque()
        self._done: Any = None
        if not ordered:
            import queue

            self._done = queue.SimpleQueue()
        self._input_error: BaseException | None = None
        self._exhausted = False
        self._current: Iterator[R] = iter(())
        self._bar: Any = None
        if progress:
            from ._core.progress import track

            self._bar = track((), progress, total=None)
        self._fill()

    def _fill(self) -> None:
        while not self._exhausted and len(self._futures) < self._window:
            try:
                chunk = list(itertools.islice(self._input, self._chunksize))
            except Exception as exc:  # the input's own error: raised after the results before it
                self._input_error = exc
                self._exhausted = True
                return
            if not chunk:
                self._exhausted = True
                return
            future = self._pool._submit(
                self._fn, (chunk,), {}, self._opts, self._kind, None, None, len(chunk)
            )
            if self._bar is not None:
                self._bar.add(
                    future
                )  # counts the chunk's items, even if its callback comes after close
            if self._done is not None:
                future.add_done_callback(self._done.put)
            self._futures.append(future)

    def __iter__(self) -> Iterator[R]:
        # A generator, so that a for loop takes the items of each chunk at C speed (`yield from` a list
        # iterator); it shares this object's state, so next() and iteration can be mixed.
        return self._items()

    def _items(self) -> Iterator[R]:
        while True:
            yield from self._current
            try:
                value = self.next()
            except StopIteration:
                return
            yield value

    def __next__(self) -> R:
        return self.next()

    def next(self, timeout: float | None = None) -> R:
        """The next result; ``timeout`` raises `multiprocessing.TimeoutError`, as `IMapIterator.next` does."""
        while True:
            for value in self._current:
                return value
            if not self._futures:
                self._close_bar()
                if self._input_error is not None:
                    error, self._input_error = self._input_error, None
                    raise error
                raise StopIteration
            if self._ordered:
                future = self._futures[0]
                try:
                    chunk = self._result(future, timeout)
                except BaseException:
                    if (
                        future.done()
                    ):  # its job failed: raise that once, then go on with the results after it
                        self._futures.popleft()
                        self._fill()
                    raise
                self._futures.popleft()
            else:
                future = self._next_done(timeout)
                self._futures.remove(future)
                chunk = self._result(future, None)
            self._fill()
            self._current = iter(chunk)

    def _next_done(self, timeout: float | None) -> JobFuture[list[R]]:
        import multiprocessing
        import queue

        try:
            done: JobFuture[list[R]] = self._done.get(timeout=timeout)
        except queue.Empty:
            raise multiprocessing.TimeoutError(f"no result within {timeout} s") from None
        except KeyboardInterrupt:
            self._pool.terminate()
            raise
        return done

    def _result(self, future: JobFuture[list[R]], timeout: float | None) -> list[R]:
        try:
            return future.get(timeout)
        except KeyboardInterrupt:
            self._pool.terminate()
            raise
        except BaseException:
            self._close_bar()
            raise

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _ExecutorView(cf.Executor):
    """A `TaskPool` seen as a `concurrent.futures.Executor`."""

    def __init__(self, pool: TaskPool) -> None:
        self._pool = pool

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[R]:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for job in list(self._pool._outstanding.values()):
                job.future.cancel()
        self._pool.close()
        if wait:
            self._pool.join()
