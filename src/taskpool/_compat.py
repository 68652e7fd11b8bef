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

import concurrent.futures as cf
import contextlib
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.pool
import os
import threading
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from ._core.job import JobKind
from ._core.ledger import PoolState
from ._errors import PoolClosedError, RemoteTraceback, SerializationError
from ._pool.imap import IMapIterator
from ._pool.pool import TaskPool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from multiprocessing.context import BaseContext

__all__ = ["AsyncResult", "MapResult", "Pool"]

R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("taskpool")

# The stdlib's exception classes this module raises; typeshed does not declare them.
_mp_pool: Any = multiprocessing.pool


class _PoolNotRunning(PoolClosedError):
    """`PoolClosedError` with the stdlib's message, so code that matches on ``"Pool not running"`` still works."""

    def __init__(self, state: str = "closed") -> None:
        super().__init__(state)
        self.args = ("Pool not running",)


def _translate(error: BaseException) -> BaseException:
    """The exception `multiprocessing.Pool` would give for ``error`` (event thread or caller thread).

    - a job's own exception keeps its identity; its worker traceback becomes a
      `multiprocessing.pool.RemoteTraceback`, which code written for the stdlib may test for;
    - arguments that do not pickle: the pickler's own exception, as the stdlib raises it;
    - a result or an exception that does not pickle in the worker: `multiprocessing.pool.MaybeEncodingError`,
      with taskpool's `SerializationError` (which names the part and the job) as its ``__cause__``.
    """
    if isinstance(error, SerializationError):
        if error.stage == "pickle" and error.where == "parent" and error.__cause__ is not None:
            return error.__cause__
        if (
            error.stage == "pickle"
            and error.where == "worker"
            and error.part in ("result", "exception")
        ):
            what = f"the {error.part} of job {error.job!r}" if error.job else f"the {error.part}"
            wrapped: BaseException = _mp_pool.MaybeEncodingError(error.reason, what)
            wrapped.__cause__ = error
            return wrapped
        return error
    cause = error.__cause__
    if isinstance(cause, RemoteTraceback):
        error.__cause__ = _mp_pool.RemoteTraceback(cause.tb)
    return error


def _run_user_callback(callback: Callable[[Any], object], arg: Any, what: str) -> None:
    """Run a user callback; log what it raises, so the result still becomes ready (event thread)."""
    try:
        callback(arg)
    except Exception:
        log.exception("the %s of a Pool result raised; the pool goes on", what)


class AsyncResult(Generic[R]):
    """The result of `Pool.apply_async`, like `multiprocessing.pool.AsyncResult`.

    Its callback (or error callback) has returned before `ready` turns true, so `get` and `wait` see its
    effects. Any thread may wait on it.
    """

    def __init__(
        self,
        callback: Callable[[R], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._callback = callback
        self._error_callback = error_callback
        # The stdlib form of the job's exception, set on the event thread before the future completes.
        self._error: BaseException | None = None
        self._future: cf.Future[R] = cf.Future()

    def __repr__(self) -> str:
        state = "pending" if not self.ready() else ("successful" if self.successful() else "failed")
        return f"<{type(self).__name__} {state}>"

    def _succeeded(self, value: R) -> None:
        """The job's callback, as given to the core (event thread, before the future completes)."""
        if self._callback is not None:
            _run_user_callback(self._callback, value, "callback")

    def _failed(self, error: BaseException) -> None:
        """The job's error callback, as given to the core (event thread, before the future completes)."""
        self._error = _translate(error)
        if self._error_callback is not None:
            _run_user_callback(self._error_callback, self._error, "error_callback")

    def ready(self) -> bool:
        """Whether the result is there (a value, an exception, or a cancellation by `Pool.terminate`)."""
        return self._future.done()

    def successful(self) -> bool:
        """Whether the job returned without raising.

        Raises:
            ValueError: the result is not ready yet (as the stdlib does); `wait` for it first.
        """
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        future = self._future
        return not future.cancelled() and self._error is None and future.exception() is None

    def wait(self, timeout: float | None = None) -> None:
        """Block the calling thread until the result is ready or ``timeout`` seconds have passed."""
        # Future.exception() waits on the future's condition and counts every cancelled state as done.
        with contextlib.suppress(cf.TimeoutError, cf.CancelledError):
            self._future.exception(timeout)

    def get(self, timeout: float | None = None) -> R:
        """Return the result, or raise the job's exception (calling thread).

        Raises:
            multiprocessing.TimeoutError: not ready within ``timeout`` seconds (the job goes on).
            concurrent.futures.CancelledError: the pool was terminated before the job finished.
        """
        self.wait(timeout)
        future = self._future
        if not future.done():
            raise multiprocessing.TimeoutError(f"the result was not ready within {timeout} s")
        if future.cancelled():
            raise cf.CancelledError("the pool was terminated before this job finished")
        error = self._error if self._error is not None else future.exception()
        if error is not None:
            raise error
        return future.result()


class MapResult(AsyncResult[list[R]]):
    """The result of `Pool.map_async` and `Pool.starmap_async`: the whole list, in input order.

    As with the stdlib, it fails as soon as one chunk fails (with that chunk's exception; ``error_callback``
    gets it), and ``callback`` is called once, with the whole list, when every chunk has succeeded.
    """

    def __init__(
        self,
        chunks: int,
        callback: Callable[[list[R]], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        super().__init__(callback, error_callback)
        self._lock = threading.Lock()
        self._parts: list[list[R] | None] = [None] * chunks
        self._left = chunks
        self._settled = False

    def _chunk_ok(self, index: int, values: list[R]) -> None:
        """One chunk succeeded (event thread)."""
        with self._lock:
            if self._settled:
                return
            self._parts[index] = values
            self._left -= 1
            if self._left:
                return
            self._settled = True
            parts, self._parts = self._parts, []
        result: list[R] = list(itertools.chain.from_iterable(p for p in parts if p is not None))
        self._succeeded(result)
        self._future.set_result(result)

    def _chunk_failed(self, error: BaseException) -> None:
        """One chunk failed (event thread), or was cancelled (any thread): the first one decides."""
        with self._lock:
            if self._settled:
                return
            self._settled = True
            self._parts = []  # the other chunks' results are dropped, as the stdlib does
        self._failed(error)
        self._future.set_exception(self._error or error)

    def _chunk_done(self, future: cf.Future[Any]) -> None:
        """A chunk's future completed (event thread, or the caller's if it was already done)."""
        if future.cancelled():
            self._chunk_failed(
                cf.CancelledError("the pool was terminated before this job finished")
            )


class _PoolIMapIterator(IMapIterator[R]):
    """`IMapIterator` that raises the stdlib's exceptions (see `_translate`); consumed in the caller's thread."""

    def next(self, timeout: float | None = None) -> R:
        try:
            return super().next(timeout)
        except (StopIteration, multiprocessing.TimeoutError, KeyboardInterrupt):
            raise
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from translated.__cause__


def _check_processes(processes: int | None) -> int:
    if processes is None:
        return os.cpu_count() or 1
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be a whole number >= 1 or None, not {processes!r}")
    if processes < 1:
        raise ValueError("Number of processes must be at least 1")
    return processes


class Pool:
    """A drop-in for `multiprocessing.Pool`: same constructor, methods and exceptions, on `TaskPool`.

    Args:
        processes: how many worker processes (default: ``os.cpu_count()``).
        initializer: called as ``initializer(*initargs)`` in each worker before it takes jobs. Unlike the
            stdlib, one that raises breaks the pool with `InitializerError` instead of respawning forever.
        initargs: the initializer's arguments.
        maxtasksperchild: replace a worker after it has run this many jobs (map chunks count as one each).
        context: a `multiprocessing` context; its start method is used. None: taskpool's default
            (forkserver on Linux, spawn elsewhere).

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
        )

    def __repr__(self) -> str:
        return f"<taskpool.Pool state={self._state} pool_size={self._processes}>"

    def __reduce__(self) -> NoReturn:
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def _check_running(self) -> None:
        if self._state != "RUN" or self._core.state in (PoolState.CLOSED, PoolState.TERMINATED):
            raise _PoolNotRunning(self._core.state.value)

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
        return _PoolIMapIterator(self._core, func, iterable, chunksize, JobKind.CHUNK, True, False)

    def imap_unordered(
        self, func: Callable[[T], R], iterable: Iterable[T], chunksize: int = 1
    ) -> IMapIterator[R]:
        """Like `imap`, but results come as they are ready."""
        self._check_running()
        return _PoolIMapIterator(self._core, func, iterable, chunksize, JobKind.CHUNK, False, False)

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
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            if extra or not chunksize:
                chunksize += 1
        chunks = [items[i : i + chunksize] for i in range(0, len(items), chunksize)]
        result: MapResult[Any] = MapResult(len(chunks), callback, error_callback)
        if not chunks:
            # Nothing to run: ready at once. The stdlib skips the callback here; it is called, once, so
            # that code that counts callbacks does not wait forever.
            result._succeeded([])
            result._future.set_result([])
            return result
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
            )
            future.add_done_callback(result._chunk_done)
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
