"""The contenders: one adapter per pool library and configuration, and the registry that describes them.

The registry (`CONTENDERS`) is plain data that the harness parent reads to plan a run: which scenarios a
contender takes part in, which packages it needs, and why it sits out the others. The adapters run only in a
child runner process (`benchmarks._run`): each imports its library when it is built, so importing this module
imports no pool library, and a missing package costs nothing until its contender is asked for.

An adapter offers a few primitives (start, stop, one blocking call, a batch of async submits, map, imap, a
crash-and-recover cycle) that the scenarios in `benchmarks._run` time. Every pool gets 2 workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from benchmarks import _jobs

if TYPE_CHECKING:
    from taskpool import TaskPool

__all__ = ["CONTENDERS", "WORKERS", "Adapter", "ContenderSpec", "Skip", "Unsupported"]

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


def _wait_all(futures: Iterable[cf.Future[Any]]) -> list[Any]:
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


def _expect_failure(exc: BaseException | None, *type_names: str) -> str:
    """Check that a crashed job failed with one of the expected errors (by class name anywhere in the MRO)."""
    if exc is None:
        raise AssertionError("the crashing job succeeded")
    names = {c.__name__ for c in type(exc).__mro__}
    if not names.intersection(type_names):
        raise AssertionError(f"the crashing job failed with {type(exc).__name__}: {exc}")
    return type(exc).__name__


class MpPool(Adapter):
    """`multiprocessing.Pool` with a given start method."""

    def __init__(self, start_method: str) -> None:
        self.ctx = multiprocessing.get_context(start_method)

    def open(self) -> None:
        self.pool = self.ctx.Pool(WORKERS)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.pool.apply(fn, args)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        results = [self.pool.apply_async(fn, a) for a in args]
        return [r.get(timeout=WAIT_S) for r in results]

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        return self.pool.map(fn, items)

    def imap(self, fn: Fn, items: Iterator[int], chunksize: int) -> Iterator[Any]:
        return self.pool.imap(fn, items, chunksize)


class Billiard(MpPool):
    """billiard (Celery's fork of multiprocessing), which also reports a lost worker; Pool's API, so it
    reuses the multiprocessing.Pool adapter."""

    def __init__(self) -> None:
        import billiard

        self.billiard = billiard

    def open(self) -> None:
        self.pool = self.billiard.Pool(WORKERS)

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        result = self.pool.apply_async(_jobs.crash, (stamp,))
        try:
            result.get(timeout=WAIT_S)
        except Exception as exc:
            # billiard hands the error back wrapped, with the worker-side traceback attached.
            name = _expect_failure(getattr(exc, "exc", exc), "WorkerLostError")
        else:
            name = _expect_failure(None)
        return name, self.call(_jobs.where)


class Executor(Adapter):
    """A `concurrent.futures` style executor: the stdlib's ProcessPoolExecutor or loky's."""

    def __init__(self, make: Callable[[], cf.Executor], broken: str) -> None:
        self.make = make
        self.broken = broken

    def open(self) -> None:
        self.executor = self.make()

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.executor.submit(fn, *args).result(timeout=WAIT_S)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return _wait_all([self.executor.submit(fn, *a) for a in args])

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        return list(self.executor.map(fn, items, chunksize=mp_chunksize(len(items))))

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        # A broken executor stays broken: recovering means shutting it down and starting a new one,
        # which is what user code has to do too.
        exc = self.executor.submit(_jobs.crash, stamp).exception(timeout=WAIT_S)
        name = _expect_failure(exc, self.broken)
        self.executor.shutdown(wait=True)
        self.executor = self.make()
        return name, self.call(_jobs.where)


def _ppe(start_method: str) -> Executor:
    ctx = multiprocessing.get_context(start_method)
    return Executor(
        lambda: cf.ProcessPoolExecutor(WORKERS, mp_context=ctx), broken="BrokenProcessPool"
    )


def _loky() -> Executor:
    import loky

    return Executor(
        lambda: loky.ProcessPoolExecutor(max_workers=WORKERS), broken="TerminatedWorkerError"
    )


class Pebble(Adapter):
    """pebble's ProcessPool (default multiprocessing context), which replaces a dead worker by itself."""

    def __init__(self) -> None:
        import pebble

        self.pebble = pebble

    def open(self) -> None:
        self.pool: Any = self.pebble.ProcessPool(max_workers=WORKERS)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.pool.schedule(fn, args=args).result(timeout=WAIT_S)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return _wait_all([self.pool.schedule(fn, args=a) for a in args])

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        future = self.pool.map(fn, items, chunksize=mp_chunksize(len(items)))
        return list(future.result())

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        exc = self.pool.schedule(_jobs.crash, args=(stamp,)).exception(timeout=WAIT_S)
        return _expect_failure(exc, "ProcessExpired"), self.call(_jobs.where)


class Mpire(Adapter):
    """mpire's WorkerPool (fork), kept alive between calls so that the workers are reused."""

    def __init__(self) -> None:
        import mpire

        self.mpire: Any = mpire

    def open(self) -> None:
        self.pool = self.mpire.WorkerPool(n_jobs=WORKERS, keep_alive=True)

    def close(self) -> None:
        self.pool.stop_and_join()

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.pool.apply(fn, args=args)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        results = [self.pool.apply_async(fn, args=a) for a in args]
        return [r.get(timeout=WAIT_S) for r in results]

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        return list(self.pool.map(fn, items))

    def imap(self, fn: Fn, items: Iterator[int], chunksize: int) -> Iterator[Any]:
        return iter(self.pool.imap(fn, items, chunk_size=chunksize))


class Joblib(Adapter):
    """joblib.Parallel (loky backend) used as a context manager, so its workers persist between calls.

    joblib has no single async submit: every call goes through Parallel, which batches automatically.
    """

    def __init__(self) -> None:
        import joblib

        self.joblib = joblib

    def open(self) -> None:
        self.parallel = self.joblib.Parallel(n_jobs=WORKERS)
        self.parallel.__enter__()

    def close(self) -> None:
        self.parallel.__exit__(None, None, None)
        # Parallel leaves loky's reusable executor running for the next call; stop it, as a pool would.
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.parallel([self.joblib.delayed(fn)(*args)])[0]

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        delayed = self.joblib.delayed
        return list(self.parallel(delayed(fn)(*a) for a in args))

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        delayed = self.joblib.delayed
        return list(self.parallel(delayed(fn)(x) for x in items))

    #: What a crashed job fails with on this backend.
    crash_error = "TerminatedWorkerError"

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        try:
            self.call(_jobs.crash, stamp)
        except Exception as exc:
            name = _expect_failure(exc, self.crash_error)
        else:
            name = _expect_failure(None)
        return name, self.call(_jobs.where)


class JoblibTaskpool(Joblib):
    """joblib.Parallel on taskpool's joblib backend (``backend="taskpool"``), beside joblib on loky."""

    def open(self) -> None:
        import taskpool.joblib  # noqa: F401 - registers the "taskpool" backend with joblib

        self.parallel = self.joblib.Parallel(n_jobs=WORKERS, backend="taskpool")
        self.parallel.__enter__()

    def close(self) -> None:
        self.parallel.__exit__(None, None, None)

    crash_error = "WorkerCrashedError"


class Dask(Adapter):
    """A dask.distributed Client on a LocalCluster of 2 single-threaded worker processes."""

    def __init__(self) -> None:
        import distributed

        self.distributed: Any = distributed

    def open(self) -> None:
        import logging

        self.cluster: Any = self.distributed.LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self.client: Any = self.distributed.Client(self.cluster)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False).result(timeout=WAIT_S)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        futures = [self.client.submit(fn, *a, pure=False) for a in args]
        return list(self.client.gather(futures))

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        # client.map makes one task per item, which no one would do with a million items: chunk the
        # list the way multiprocessing.Pool would and map a list-level function over the chunks.
        if fn is not _jobs.square:
            raise Unsupported("chunked map is implemented for square only")
        size = mp_chunksize(len(items))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        futures = self.client.map(_jobs.square_chunk, chunks, pure=False)
        return [y for chunk in self.client.gather(futures) for y in chunk]


class Taskpool(Adapter):
    """taskpool's TaskPool with a given backend and start method."""

    def __init__(self, backend: str, start_method: str | None) -> None:
        try:
            import taskpool

            # taskpool resolves its public names lazily: touch the ones used here now, so that their import
            # is not timed as part of the first pool (the other libraries are imported before timing too).
            _ = (taskpool.TaskPool, taskpool.WorkerCrashedError)
        except Exception as exc:
            raise Skip(f"taskpool does not import: {type(exc).__name__}: {exc}") from exc
        self.taskpool = taskpool
        self.backend = backend
        self.start_method = start_method

    def open(self) -> None:
        kwargs: dict[str, Any] = {"workers": WORKERS, "backend": self.backend}
        if self.start_method is not None:
            kwargs["start_method"] = self.start_method
        try:
            self.pool: TaskPool = self.taskpool.TaskPool(**kwargs)
        except Exception as exc:
            if self.backend in ("process", "thread"):
                raise
            # Optional backends (dask) may be missing or not written yet: that is a skip, not a failure.
            raise Skip(
                f"TaskPool(backend={self.backend!r}) raised {type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.pool.apply(fn, args)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return _wait_all([self.pool.submit(fn, *a) for a in args])

    def apply_async_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return _wait_all([self.pool.apply_async(fn, a) for a in args])

    def tiny_variants(self) -> dict[str, Callable[[Sequence[tuple[Any, ...]]], object]]:
        return {
            "": lambda args: self.submit_all(_jobs.noop, args),
            "apply_async": lambda args: self.apply_async_all(_jobs.noop, args),
        }

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        return self.pool.map(fn, items)

    def map_progress(self, fn: Fn, items: list[int], file: IO[str]) -> list[Any]:
        return self.pool.map(fn, items, progress={"disable": False, "file": file})

    def imap(self, fn: Fn, items: Iterator[int], chunksize: int) -> Iterator[Any]:
        return iter(self.pool.imap(fn, items, chunksize=chunksize))

    def submit_all_with(
        self, options: dict[str, Any], fn: Fn, args: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        """`submit_all` through ``pool.options(**options)``; Unsupported if this taskpool lacks an option."""
        try:
            view = self.pool.options(**options)
        except (TypeError, ValueError) as exc:
            # TypeError: an older taskpool without the keyword; ValueError: a backend that cannot honour it.
            raise Unsupported(
                f"options({', '.join(options)}=...) raised {type(exc).__name__}: {exc}"
            ) from exc
        return _wait_all([view.submit(fn, *a) for a in args])

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        exc = self.pool.submit(_jobs.crash, stamp).exception(timeout=WAIT_S)
        return _expect_failure(exc, "WorkerCrashedError"), self.call(_jobs.where)


def _ray() -> Adapter:
    from benchmarks._ray import Ray  # imports ray: only in the child that runs this contender

    return Ray()


_ARRAYS = frozenset({"numpy_args", "numpy_results"})
_CORE = frozenset({"tiny", "map", "cpu", "startup", "large", "latency", "stragglers"}) | _ARRAYS
_NO_CRASH = "the stdlib Pool never fails the job: its result waits forever"
_NO_IMAP = "Executor.map submits the whole input at once"


@dataclass(frozen=True, slots=True)
class ContenderSpec:
    """What the parent knows about a contender without importing its library.

    Attributes:
        name: what `--only` and the result files call it; `family` (the part before "-") selects a group.
        label: the library and configuration, for humans.
        make: builds the adapter (in the child).
        scenarios: the scenarios it takes part in.
        requires: importable modules it needs; a missing one skips the contender with a note.
        scale: per scenario, a factor on the scenario's sizes, for contenders whose per-job cost would
            make the full size take minutes; rates and per-job costs stay comparable.
        notes: per scenario it sits out, why.
        quick: whether `--quick` runs it when `--only` does not name it (False for a contender whose
            every sample takes many seconds to start).
        extra_timeout_s: seconds added to every scenario's timeout for this contender (its start).
    """

    name: str
    label: str
    make: Callable[[], Adapter]
    scenarios: frozenset[str]
    requires: tuple[str, ...] = ()
    scale: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    quick: bool = True
    extra_timeout_s: float = 0.0

    @property
    def family(self) -> str:
        return self.name.split("-", 1)[0]


_SPECS = (
    ContenderSpec(
        "taskpool-forkserver",
        "taskpool TaskPool (process, forkserver)",
        lambda: Taskpool("process", "forkserver"),
        _CORE | {"imap10m", "events", "progress", "crash"},
    ),
    ContenderSpec(
        "taskpool-fork",
        "taskpool TaskPool (process, fork)",
        lambda: Taskpool("process", "fork"),
        _CORE | {"imap10m", "events", "progress", "crash"},
    ),
    ContenderSpec(
        "taskpool-thread",
        "taskpool TaskPool (thread backend)",
        lambda: Taskpool("thread", None),
        (_CORE - {"cpu", "large"} - _ARRAYS) | {"events", "progress"},
        notes={
            "cpu": "threads share the GIL: no speedup to measure",
            "large": "threads pass a reference: no argument data moves",
            "numpy_args": "threads pass a reference: no argument data moves",
            "numpy_results": "threads pass a reference: no result data moves",
            "crash": "os._exit in a thread ends the whole process",
        },
    ),
    ContenderSpec(
        "taskpool-dask",
        "taskpool TaskPool (dask backend)",
        lambda: Taskpool("dask", None),
        _CORE | {"crash"},
        requires=("distributed",),
        scale={"tiny": 0.1, "map": 0.25, "latency": 0.1},
    ),
    ContenderSpec(
        "taskpool-cli",
        "taskpool run (command line)",
        lambda: Adapter(),
        frozenset({"cli"}),
    ),
    ContenderSpec(
        "mp.Pool-fork",
        "multiprocessing.Pool (fork)",
        lambda: MpPool("fork"),
        _CORE | {"imap10m"},
        notes={"crash": _NO_CRASH},
    ),
    ContenderSpec(
        "mp.Pool-forkserver",
        "multiprocessing.Pool (forkserver)",
        lambda: MpPool("forkserver"),
        _CORE | {"imap10m"},
        notes={"crash": _NO_CRASH},
    ),
    ContenderSpec(
        "PPE-forkserver",
        "concurrent.futures.ProcessPoolExecutor (forkserver)",
        lambda: _ppe("forkserver"),
        _CORE | {"crash"},
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "PPE-fork",
        "concurrent.futures.ProcessPoolExecutor (fork)",
        lambda: _ppe("fork"),
        _CORE | {"crash"},
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "loky",
        "loky ProcessPoolExecutor",
        _loky,
        _CORE | {"crash"},
        requires=("loky",),
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "joblib",
        "joblib Parallel (loky backend)",
        Joblib,
        _CORE | {"crash"},
        requires=("joblib",),
        # Every call is a whole Parallel run (about 10 ms): fewer calls give the same median.
        scale={"latency": 0.1},
        notes={"imap10m": "Parallel has no lazy, ordered imap over a generator"},
    ),
    ContenderSpec(
        "joblib-taskpool",
        "joblib Parallel (taskpool backend)",
        JoblibTaskpool,
        _CORE | {"crash"},
        requires=("joblib",),
        scale={"latency": 0.1},
        notes={"imap10m": "Parallel has no lazy, ordered imap over a generator"},
    ),
    ContenderSpec(
        "pebble",
        "pebble ProcessPool",
        Pebble,
        _CORE | {"crash"},
        requires=("pebble",),
        notes={"imap10m": "ProcessPool.map submits the whole input at once"},
    ),
    ContenderSpec(
        "mpire",
        "mpire WorkerPool (fork)",
        Mpire,
        _CORE | {"imap10m"},
        requires=("mpire",),
        notes={"crash": "the job fails with RuntimeError, but the next job never completes"},
    ),
    ContenderSpec(
        "billiard",
        "billiard Pool",
        Billiard,
        _CORE | {"imap10m", "crash"},
        requires=("billiard",),
    ),
    ContenderSpec(
        "dask",
        "dask.distributed LocalCluster + Client",
        Dask,
        _CORE,
        requires=("distributed",),
        scale={"tiny": 0.1, "map": 0.25, "latency": 0.1},
        notes={
            "crash": "a nanny restarts the worker and reruns the task until it is marked KilledWorker"
        },
    ),
    ContenderSpec(
        "ray",
        "Ray tasks on a local instance (num_cpus=2)",
        _ray,
        (_CORE - {"map"}) | {"crash"},
        requires=("ray",),
        # About 0.5 ms per task: fewer tasks give the same per-job cost.
        scale={"tiny": 0.1, "latency": 0.1},
        notes={
            "map": "no map of its own",
            "imap10m": "no lazy, ordered imap over a generator",
        },
        # ray.init and ray.shutdown take 5 s in every sample on a quiet machine, 20 s and more on a busy one.
        quick=False,
        extra_timeout_s=60.0,
    ),
)

#: Every contender by name, in report order.
CONTENDERS: dict[str, ContenderSpec] = {s.name: s for s in _SPECS}
