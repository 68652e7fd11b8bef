"""`TaskPool`: the façade users write against.

The pool hands each job to its backend and leaves the rest to the core: the `Ledger` (state and outstanding
jobs), the event thread, and `Outcomes` (retries, callbacks, events, futures). It never asks which backend it
drives; what differs between backends is on the `Backend` protocol.

Threads that touch a pool:
- caller threads: `submit` and friends, `close`, `join`, `terminate`, `on`/`off`, `shared`.
- the event thread: `Outcomes.process`, and the pool's own requests queued with `EventThread.call`.
- the backend's own threads, which only call the sink (`EventThread.put`).
The event thread and the backend's threads hold no reference to the pool, so a pool that nobody references is
collected, and its finalizer stops the workers. No lock is held while user code runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .._backends import make_backend
from .._core.event_thread import EventThread
from .._core.events import Event, EventKind, Handlers
from .._core.job import JobKind, JobOptions, check_timeout
from .._core.ledger import Ledger, PoolState
from .._core.outcomes import Outcomes
from .._core.reports import ReportKind
from .._errors import TaskpoolError
from .._runtime.seeding import MAP, SUBMIT
from .common import check_preload, check_whole, unexpected_arguments
from .cpus import threads_per_worker, usable_cpus
from .lifetime import Lifecycle, track_pool
from .sizes import parse_size
from .submitter import Submitter

if TYPE_CHECKING:
    from .._core.backend import Backend
    from .._core.future import JobFuture
    from .._core.retry import Retry
    from .._shared import SharedState
    from .._timeline import Recorder, Timeline

__all__ = ["TaskPool"]

T = TypeVar("T")

log = logging.getLogger("taskpool")


def _stop_future(ledger: Ledger, backend: Backend, future: JobFuture[Any]) -> bool:
    """Stop the running job of ``future`` (any thread); what `JobFuture.stop` calls."""
    job = ledger.outstanding.get(future.job_id)
    if job is None or job.future is not future or not backend.supports_stop:
        return False
    return backend.stop(job)


class TaskPool(Submitter, Lifecycle):
    """A pool of workers that runs jobs and gives back typed futures.

    Args:
        workers: how many jobs run at once (worker processes for the process backend). Default: the number
            of CPUs this process may use (its CPU affinity, limited by a cgroup CPU quota), read when the pool
            is made.
        backend: ``"process"`` (CPU-bound work; the default), ``"thread"`` (I/O-bound work), ``"inline"``
            (runs each job in the submitting thread; for debugging) or ``"dask"`` (a Dask cluster).
        start_method: ``"forkserver"`` (the default where the platform has it: Linux, macOS), ``"spawn"`` or ``"fork"``
            (process backend).
            ``fork`` starts fastest but is unsafe once the parent has threads; see the docs.
        initializer: called as ``initializer(*initargs)`` in each worker before it takes jobs.
        initargs: the initializer's arguments.
        max_tasks_per_worker: replace a worker after it has run this many jobs (None: never).
        max_memory_per_worker: replace a worker after a job that leaves its private memory (unique set size)
            past this many bytes, an int or a string like ``"512MB"``, ``"2GiB"`` or ``"1.5G"`` (process
            backend; None: never). The job's outcome counts; the worker's next jobs run on a fresh one.
        timeout: the default per-job timeout in seconds (None: no limit).
        retry: the default `Retry` policy (None: no retries).
        max_pending: the most jobs submitted but not finished; `submit` blocks the caller while that many
            are pending, so a producer cannot outrun the workers and exhaust memory (None: no bound).
        capture_output: make each worker's stdout and stderr (file descriptors 1 and 2, so C code and
            child processes too) pipes to the parent, which prints what comes through them line by line
            (process backend). False: workers write where this process does.
        preload: names of modules every worker has imported before it takes a job (process backend). Under
            the default start method they are imported once, in the template process that workers are
            forked from, so each worker starts with them for free. A module that fails to import is an
            error here, before any job runs.
        limit_threads: cap the thread pools of BLAS, OpenMP and numexpr in each worker (process backend):
            ``True`` (the default) to the worker's share of the CPUs (CPUs // workers, at least 1), an int
            to that many threads, ``False`` to leave them alone. Variables such as ``OMP_NUM_THREADS``
            that the environment sets already are kept.
        address: the Dask scheduler address, or a ``distributed.Client`` (dask backend).
        seed: a whole number >= 0 that makes jobs' randomness reproducible: each job gets its own seed
            (`taskpool.job_seed`, `taskpool.job_rng`), derived from this one and the job's position, and
            the global ``random`` module (and numpy's legacy global generator, where numpy is imported) is
            seeded from it before each job. None (the default): jobs get no seed.
        timeline: record which worker runs which job when, for `timeline` (costs a little per job; off
            by default).

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
        max_memory_per_worker: int | str | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
        max_pending: int | None = None,
        capture_output: bool = True,
        address: Any = None,
        preload: Iterable[str] = (),
        limit_threads: bool | int = True,
        seed: int | None = None,
        timeline: bool = False,
        **unexpected: NoReturn,
    ) -> None:
        if unexpected:
            raise TypeError(unexpected_arguments(unexpected))
        if workers is None:
            workers = usable_cpus()
        check_whole("workers", workers, 1, optional=False)
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, not {initializer!r}")
        check_whole("max_tasks_per_worker", max_tasks_per_worker, 1, optional=True)
        check_whole("max_pending", max_pending, 1, optional=True)
        preload = check_preload(preload)
        thread_limit = threads_per_worker(limit_threads, workers)
        memory_limit = parse_size("max_memory_per_worker", max_memory_per_worker)
        check_whole("seed", seed, 0, optional=True)
        self.seed = seed
        # What a job's seed counts from: single submissions, and calls of the map family.
        self._submissions = itertools.count()
        self._map_calls = itertools.count()
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
            preload=preload,
            thread_limit=thread_limit,
            max_memory_per_worker=memory_limit,
        )
        self._check_options(self._opts)
        self.workers = self._backend.workers
        self._ledger = Ledger(max_pending)
        self._handlers = Handlers()
        self._handlers_lock = threading.Lock()
        self._shared: SharedState | None = None
        self._joined = False
        # Bound once, with no reference to the pool: every future gets the same one.
        self._stopper = functools.partial(_stop_future, self._ledger, self._backend)
        self._recorder: Recorder | None = None
        if timeline:
            # Before the backend starts, so that the record has every worker's start.
            from .._timeline import KINDS, Recorder

            self._recorder = Recorder()
            for kind in KINDS:
                self.on(kind, self._recorder.record)
        self._events = EventThread()
        self._outcomes = Outcomes(
            self._ledger, self._handlers, self._backend.submit, self._events.call_later
        )
        self._events.start(self._outcomes.process)
        self._ledger.event_thread = self._events.ident
        self._backend.start(self._events.put, self._events.backlog)
        track_pool(self)

    def __repr__(self) -> str:
        return f"<TaskPool {self._backend.name} workers={self.workers} {self.state.value}>"

    @property
    def state(self) -> PoolState:
        """The pool's state."""
        return self._ledger.state

    @property
    def backend(self) -> str:
        """The name of the backend the pool runs on."""
        return self._backend.name

    @property
    def start_method(self) -> str | None:
        """The multiprocessing start method of the process backend (None for other backends)."""
        return self._backend.start_method

    # -- submission (caller threads) -------------------------------------------------------------------
    def _check_options(self, opts: JobOptions) -> None:
        if opts.timeout is not None and not self._backend.supports_timeout:
            raise ValueError(
                f"the {self._backend.name} backend cannot enforce a timeout (a running job cannot be stopped "
                "there); use the process backend for jobs that need one"
            )
        if opts.backup_after is not None and not self._backend.supports_backup:
            raise ValueError(
                f"the {self._backend.name} backend cannot run backup copies of a job (backup_after=); use "
                "the process backend for jobs that need them"
            )

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: JobOptions | None = None,
        kind: JobKind = JobKind.CALL,
        *,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
        size: int = 1,
        first: int | None = None,
        seed_at: tuple[int, int] | None = None,
    ) -> JobFuture[Any]:
        """Submit one job (a caller thread): what every front end's submission comes down to.

        ``opts`` None means the pool's own options. ``seed_at``, for a chunk of a map-family call: the call's
        number (`_map_call`) and the index of the chunk's first item, where the job's seed comes from (a job
        without it is numbered as a single submission). This is the hot path of every submit: keep it lean.
        """
        if not callable(fn):
            raise TypeError(f"the job's function must be callable, not {fn!r}")
        if opts is None:
            opts = self._opts
        elif opts is not self._opts and opts.timed:
            self._check_options(opts)
        job = self._ledger.admit(fn, args, kwargs, opts, kind, callback, error_callback, size)
        future = job.future
        if size != 1:
            future._items = size
        if first is not None:
            job.first = first
        if self.seed is not None:
            if seed_at is None:
                job.seed = (self.seed, SUBMIT, next(self._submissions), 0)
            else:
                job.seed = (self.seed, MAP, *seed_at)
        if opts.retry is not None:
            job.started = time.monotonic()  # what stop_after_delay counts from
        future._stopper = self._stopper
        if "job_submitted" in self._handlers.by_kind:
            self._events.call(functools.partial(self._outcomes.submitted, job))
        if self._events.backlog.over() and threading.get_ident() != self._ledger.event_thread:
            # Handlers lag behind: the submitter waits for them rather than pile up work (see Backlog).
            self._events.backlog.wait_below()
        try:
            self._backend.submit(job)
        except (
            TaskpoolError
        ) as exc:  # it cannot be sent (it does not pickle): that job fails, nothing else
            self._events.put([(ReportKind.FAILED, job, None, None, None, exc)])
        return future

    def _map_call(self) -> int:
        """The number of a new call of the map family (0 for the first): where its jobs' seeds come from."""
        return next(self._map_calls)

    def _wait(self, future: JobFuture[T]) -> T:
        """Wait for a future the pool made for a blocking call; Ctrl-C terminates the pool."""
        try:
            return future.result()
        except KeyboardInterrupt:
            self.terminate()
            raise

    # -- events ----------------------------------------------------------------------------------------
    def on(self, kind: EventKind, handler: Callable[[Event], object]) -> Callable[[], None]:
        """Call ``handler(event)`` on the pool's event thread, in the parent, for each event of ``kind``.

        Returns a function that removes the handler again. Handlers run in the order things happened and
        never concurrently with each other or with callbacks; one that raises is logged and the pool goes on.

        Raises:
            ValueError: ``kind`` is not an event kind (the message lists them).
        """
        with self._handlers_lock:  # the change and what the backend is told of it, as one step
            self._handlers.add(kind, handler)
            if kind == "job_started":
                self._backend.want_started(True)

        def remove() -> None:
            self.off(kind, handler)

        return remove

    def off(self, kind: EventKind, handler: Callable[[Event], object]) -> bool:
        """Remove a handler added with `on`; returns whether it was there."""
        with self._handlers_lock:
            removed = self._handlers.remove(kind, handler)
            if kind == "job_started" and "job_started" not in self._handlers.by_kind:
                self._backend.want_started(False)
        return removed

    def timeline(self) -> Timeline:
        """The timeline of the run so far: which worker ran which job when, and how each attempt ended.

        A snapshot, taken from any thread at any time (while jobs run, or after `join`); save it with
        ``save_html(path)`` (a self-contained page) or ``save_png(path)`` (needs matplotlib).

        Raises:
            RuntimeError: the pool was made without ``timeline=True``, so it recorded nothing.
        """
        if self._recorder is None:
            raise RuntimeError(
                "this pool records no timeline: make it with TaskPool(..., timeline=True)"
            )
        from .._timeline import Timeline

        return Timeline._from_marks(
            self._recorder.marks(),
            backend=self._backend.name,
            size=self.workers,
            origin=self._recorder.origin,
            halted=self._recorder.halted,
        )

    # -- shared state ----------------------------------------------------------------------------------
    @property
    def shared(self) -> SharedState:
        """Shared state (dicts, lists, counters, locks, ...) served by one Manager process, made on first use.

        It stops when the pool is joined or terminated.

        Raises:
            PoolClosedError: the pool is closed.
            TaskpoolError: the backend's workers cannot reach a Manager on this machine (dask: use Dask's
                Lock, Variable and Queue instead).
        """
        if self._shared is None:
            with self._ledger.lock:
                if self.state is not PoolState.RUNNING:
                    raise self._ledger.closed_error()
                if self._shared is None:
                    why = self._backend.shared_state_unavailable
                    if why is not None:
                        raise TaskpoolError(why)
                    import multiprocessing

                    from .._shared import SharedState

                    self._shared = SharedState(
                        multiprocessing.get_context(self.start_method), self._backend.shared_array
                    )
        return self._shared

    def share(self, obj: T) -> T:
        """Send ``obj`` to the workers once, for many jobs: pass what this returns as a job argument.

        On the process backend, ``obj`` is pickled once into shared memory, and the returned handle pickles as
        a reference to it: a job that takes the handle as an argument gets the object itself, unpickled at
        most once per worker and the same object for every later job there (its numpy arrays read-only, as
        the memory is shared). The memory is freed when the pool ends. On the thread and inline backends this
        returns ``obj`` itself. The handle is typed as ``obj``, so a job that takes the object type-checks
        with the handle.

        Raises:
            PoolClosedError: the pool is closed.
            SerializationError: ``obj`` does not pickle.
            OSError: shared memory is not available here (the warning logged says why).
            NotImplementedError: the dask backend (use ``distributed.Client.scatter``).
        """
        with self._ledger.lock:
            if self.state is not PoolState.RUNNING:
                raise self._ledger.closed_error()
        return self._backend.share(obj)

    # -- concurrent.futures.Executor -------------------------------------------------------------------
    def as_executor(self) -> cf.Executor:
        """This pool as a `concurrent.futures.Executor` (for ``loop.run_in_executor`` and the like).

        It keeps the Executor contract: ``submit`` after ``shutdown`` raises `RuntimeError`; ``map(fn,
        *iterables, timeout=None, chunksize=1)`` yields results lazily in input order, ``chunksize`` items per
        job; ``shutdown(wait=True)`` closes and joins the pool.
        """
        from .executor import ExecutorView

        return ExecutorView(self)
