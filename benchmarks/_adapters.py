"""One adapter per pool library and configuration: the stdlib's pools, loky, joblib, pebble, mpire, billiard,
Dask and taskpool itself (Ray's is in `benchmarks._ray`).

Runs only in a child runner process (`benchmarks._run`): each adapter imports its library when it is built,
so importing this module imports no pool library, and a missing package costs nothing until its contender is
asked for.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from benchmarks import _jobs
from benchmarks._adapter import (
    WAIT_S,
    WORKERS,
    Adapter,
    Fn,
    Skip,
    Unsupported,
    Where,
    expect_failure,
    mp_chunksize,
    wait_all,
)

if TYPE_CHECKING:
    from taskpool import TaskPool

__all__ = [
    "Billiard",
    "Dask",
    "Executor",
    "Joblib",
    "JoblibTaskpool",
    "MpPool",
    "Mpire",
    "Pebble",
    "Taskpool",
    "loky_executor",
    "ppe",
]


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
            name = expect_failure(getattr(exc, "exc", exc), "WorkerLostError")
        else:
            name = expect_failure(None)
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
        return wait_all([self.executor.submit(fn, *a) for a in args])

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        return list(self.executor.map(fn, items, chunksize=mp_chunksize(len(items))))

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        # A broken executor stays broken: recovering means shutting it down and starting a new one,
        # which is what user code has to do too.
        exc = self.executor.submit(_jobs.crash, stamp).exception(timeout=WAIT_S)
        name = expect_failure(exc, self.broken)
        self.executor.shutdown(wait=True)
        self.executor = self.make()
        return name, self.call(_jobs.where)


def ppe(start_method: str) -> Executor:
    ctx = multiprocessing.get_context(start_method)
    return Executor(
        lambda: cf.ProcessPoolExecutor(WORKERS, mp_context=ctx), broken="BrokenProcessPool"
    )


def loky_executor() -> Executor:
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
        return wait_all([self.pool.schedule(fn, args=a) for a in args])

    def map(self, fn: Fn, items: list[int]) -> list[Any]:
        future = self.pool.map(fn, items, chunksize=mp_chunksize(len(items)))
        return list(future.result())

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        exc = self.pool.schedule(_jobs.crash, args=(stamp,)).exception(timeout=WAIT_S)
        return expect_failure(exc, "ProcessExpired"), self.call(_jobs.where)


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
            name = expect_failure(exc, self.crash_error)
        else:
            name = expect_failure(None)
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
        return wait_all([self.pool.submit(fn, *a) for a in args])

    def apply_async_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        return wait_all([self.pool.apply_async(fn, a) for a in args])

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
        return wait_all([view.submit(fn, *a) for a in args])

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        exc = self.pool.submit(_jobs.crash, stamp).exception(timeout=WAIT_S)
        return expect_failure(exc, "WorkerCrashedError"), self.call(_jobs.where)
