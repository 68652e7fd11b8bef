"""`Pool`: a drop-in for `multiprocessing.Pool`, built on `TaskPool`.

`Pool` takes the stdlib's constructor arguments, has its methods, and raises its exceptions
(``ValueError("Pool not running")``, `multiprocessing.TimeoutError`, `multiprocessing.pool.MaybeEncodingError`,
a job's own exception with a `multiprocessing.pool.RemoteTraceback` as ``__cause__``). What it does not copy
are the stdlib's hangs: a worker that dies fails its job with `WorkerCrashedError`, a callback that raises is
logged, and a result of a terminated pool raises `concurrent.futures.CancelledError` instead of blocking forever.

Threads:
- caller threads: the constructor, every submitting method, `close`, `join`, `terminate`, and
  `AsyncResult.get`/``wait``.
- the event thread of the underlying `TaskPool`: it runs the per-job callbacks this module hands to the core,
  and so it translates errors into the stdlib's, assembles `map_async` results, and runs the user's
  ``callback`` / ``error_callback`` (each one once, before the result is ready).
- `MapResult._chunk_done` may also run in a caller thread (a chunk cancelled by `terminate`); ``_lock`` guards
  the assembly of a `MapResult` and is never held while user code runs.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .._core.job import JobKind
from .._core.ledger import PoolState
from .._pool.common import split_chunks
from .._pool.cpus import usable_cpus
from .._pool.imap import IMapIterator
from .._pool.pool import TaskPool
from .results import AsyncResult, MapResult, PoolIMapIterator, PoolNotRunning

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from multiprocessing.context import BaseContext

R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("taskpool")


__all__ = ["Pool"]


def _check_processes(processes: int | None) -> int:
    if processes is None:
        return usable_cpus()
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be a whole number >= 1 or None, not {processes!r}")
    if processes < 1:
        raise ValueError("Number of processes must be at least 1")
    return processes


class Pool:
    """A drop-in for `multiprocessing.Pool`: same constructor, methods and exceptions, on `TaskPool`.

    Args:
        processes: how many worker processes (default: the CPUs this process may use: its CPU affinity,
            limited by a cgroup CPU quota, which ``multiprocessing.Pool``'s default ignores).
        initializer: called as ``initializer(*initargs)`` in each worker before it takes jobs. Unlike the
            stdlib, one that raises breaks the pool with `InitializerError` instead of respawning forever.
        initargs: the initializer's arguments.
        maxtasksperchild: replace a worker after it has run this many jobs (map chunks count as one each).
        context: a `multiprocessing` context; its start method is used. None: taskpool's default
            (forkserver where the platform has it, spawn elsewhere).
        seed: taskpool's own, keyword only: jobs get reproducible seeds (`taskpool.job_seed`,
            `taskpool.job_rng`; `random` is seeded before each job), as with ``TaskPool(seed=...)``.

    Used as a context manager, the pool is terminated on exit, as the stdlib's is; use `close` and `join`
    inside the block to let the jobs finish.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: BaseContext | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        processes = _check_processes(processes)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            isinstance(maxtasksperchild, bool)
            or not isinstance(maxtasksperchild, int)
            or maxtasksperchild <= 0
        ):
            raise ValueError(
                f"maxtasksperchild must be a positive int or None, not {maxtasksperchild!r}"
            )
        start_method = context.get_start_method() if context is not None else None
        self._processes = processes
        self._state = "RUN"  # the stdlib's states: RUN, CLOSE, TERMINATE
        self._core = TaskPool(
            processes,
            start_method=start_method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=maxtasksperchild,
            seed=seed,
        )

    def __repr__(self) -> str:
        return f"<taskpool.Pool state={self._state} pool_size={self._processes}>"

    def __reduce__(self) -> NoReturn:
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def _check_running(self) -> None:
        if self._state != "RUN" or self._core.state in (PoolState.CLOSED, PoolState.TERMINATED):
            raise PoolNotRunning(self._core.state.value)

    # -- one call ----------------------------------------------------------------------------------------
    def apply(
        self,
        func: Callable[..., R],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
    ) -> R:
        """Run ``func(*args, **kwds)`` in a worker and return its result (blocks the caller)."""
        return self._blocking(self.apply_async(func, args, kwds))

    def apply_async(
        self,
        func: Callable[..., R],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[R], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> AsyncResult[R]:
        """Submit ``func(*args, **kwds)`` and return its `AsyncResult` at once (caller thread).

        ``callback`` gets the result, or ``error_callback`` the exception, on the pool's event thread in this
        process, before the result is ready. A callback that raises is logged; the pool goes on.

        Raises:
            ValueError: the pool is closed or terminated (``"Pool not running"``).
        """
        self._check_running()
        _check_callbacks(callback, error_callback)
        result: AsyncResult[R] = AsyncResult(callback, error_callback)
        result._future = self._core.apply_async(
            func, args, kwds, callback=result._succeeded, error_callback=result._failed
        )
        return result

    # -- many calls ----------------------------------------------------------------------------------------
    def map(
        self, func: Callable[[T], R], iterable: Iterable[T], chunksize: int | None = None
    ) -> list[R]:
        """Apply ``func`` to every item; the results in input order (blocks the caller).

        The input is read whole first, and sent in chunks of ``chunksize`` (by default about four chunks per
        worker, as the stdlib chooses). The first chunk to fail raises its exception here.
        """
        return self._blocking(self._map_async(func, iterable, JobKind.CHUNK, chunksize, None, None))

    def map_async(
        self,
        func: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int | None = None,
        callback: Callable[[list[R]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[R]:
        """Like `map`, but return a `MapResult` at once; ``callback`` gets the whole list, once."""
        return self._map_async(func, iterable, JobKind.CHUNK, chunksize, callback, error_callback)

    def starmap(
        self,
        func: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
    ) -> list[R]:
        """Like `map`, but each item is unpacked as the arguments: ``func(*item)``."""
        return self._blocking(
            self._map_async(func, iterable, JobKind.STARCHUNK, chunksize, None, None)
        )

    def starmap_async(
        self,
        func: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[list[R]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> MapResult[R]:
        """Like `starmap`, but return a `MapResult` at once."""
        return self._map_async(
            func, iterable, JobKind.STARCHUNK, chunksize, callback, error_callback
        )

    def imap(
        self, func: Callable[[T], R], iterable: Iterable[T], chunksize: int = 1
    ) -> IMapIterator[R]:
        """Apply ``func`` lazily; results in input order (``next(timeout)`` as in the stdlib).

        Unlike the stdlib, the input is read only as fast as results are taken, so an endless input works.
        """
        self._check_running()
        return PoolIMapIterator(
            self._core, func, iterable, chunksize, JobKind.CHUNK, True, False, locate=False
        )

    def imap_unordered(
        self, func: Callable[[T], R], iterable: Iterable[T], chunksize: int = 1
    ) -> IMapIterator[R]:
        """Like `imap`, but results come as they are ready."""
        self._check_running()
        return PoolIMapIterator(
            self._core, func, iterable, chunksize, JobKind.CHUNK, False, False, locate=False
        )

    def _map_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        kind: JobKind,
        chunksize: int | None,
        callback: Callable[[list[Any]], object] | None,
        error_callback: Callable[[BaseException], object] | None,
    ) -> MapResult[Any]:
        self._check_running()
        _check_callbacks(callback, error_callback)
        if chunksize is not None and (
            isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1
        ):
            raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
        items = list(iterable)  # an exception of the input itself is raised here, in the caller
        # Four chunks per process when no size is given, as multiprocessing.Pool chooses.
        chunks = split_chunks(items, chunksize, self._processes * 4)
        result: MapResult[Any] = MapResult(len(chunks), callback, error_callback)
        if not chunks:
            # Nothing to run: ready at once. The stdlib skips the callback here; it is called, once, so
            # that code that counts callbacks does not wait forever.
            result._succeeded([])
            result._future.set_result([])
            return result
        call = (
            self._core._map_call()
        )  # with a seed, the items draw what TaskPool's map would give them
        first = 0
        for index, chunk in enumerate(chunks):
            # The core's chunk jobs send ``func`` to each worker once, by key, and run it over the chunk.
            future = self._core._submit(
                func,
                (chunk,),
                {},
                kind=kind,
                callback=functools.partial(result._chunk_ok, index),
                error_callback=result._chunk_failed,
                size=len(chunk),
                seed_at=(call, first),
            )
            future.add_done_callback(result._chunk_done)
            first += len(chunk)
        return result

    def _blocking(self, result: AsyncResult[R]) -> R:
        try:
            return result.get()
        except KeyboardInterrupt:  # Ctrl-C: stop the workers now, not after the jobs finish
            self.terminate()
            raise

    # -- lifecycle -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Take no more jobs; those submitted still run. Call `join` next to wait for them."""
        if self._state == "RUN":
            self._state = "CLOSE"
        self._core.close()

    def terminate(self) -> None:
        """Stop now: kill the workers; results not ready yet raise `concurrent.futures.CancelledError`."""
        self._state = "TERMINATE"
        self._core.terminate()

    def join(self) -> None:
        """Wait for the submitted jobs to finish and the workers to exit.

        Raises:
            ValueError: the pool is still running: call `close` or `terminate` first.
        """
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        self._core.join()

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.terminate()


def _check_callbacks(
    callback: Callable[[Any], object] | None,
    error_callback: Callable[[BaseException], object] | None,
) -> None:
    for cb in (callback, error_callback):
        if cb is not None and not callable(cb):
            raise TypeError(f"callbacks must be callable, not {cb!r}")
