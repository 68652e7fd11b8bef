"""The results of the `Pool` drop-in: `AsyncResult`, `MapResult`, and the stdlib's errors and timeouts.

Threads: the per-job callbacks here run on the underlying `TaskPool`'s event thread: they translate errors
into the stdlib's, assemble `map_async` results, and run the user's ``callback``/``error_callback`` (each once,
before the result is ready). `get`/`wait` run in caller threads. `MapResult._chunk_done` may also run in a
caller thread (a chunk cancelled by `terminate`); ``_lock`` guards the assembly of a `MapResult` and is never
held while user code runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.pool
import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import PoolClosedError, RemoteTraceback, SerializationError
from .._pool.imap import IMapIterator

if TYPE_CHECKING:
    from collections.abc import Callable

R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("taskpool")

# The stdlib's exception classes this module raises; typeshed does not declare them.
_mp_pool: Any = multiprocessing.pool

__all__ = [
    "AsyncResult",
    "MapResult",
    "PoolIMapIterator",
    "PoolNotRunning",
    "run_user_callback",
    "translate",
]


class PoolNotRunning(PoolClosedError):
    """`PoolClosedError` with the stdlib's message, so code that matches on ``"Pool not running"`` still works."""

    def __init__(self, state: str = "closed") -> None:
        super().__init__(state)
        self.args = ("Pool not running",)


def translate(error: BaseException) -> BaseException:
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


def run_user_callback(callback: Callable[[Any], object], arg: Any, what: str) -> None:
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
            run_user_callback(self._callback, value, "callback")

    def _failed(self, error: BaseException) -> None:
        """The job's error callback, as given to the core (event thread, before the future completes)."""
        self._error = translate(error)
        if self._error_callback is not None:
            run_user_callback(self._error_callback, self._error, "error_callback")

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


class PoolIMapIterator(IMapIterator[R]):
    """`IMapIterator` that raises the stdlib's exceptions (see `_translate`); consumed in the caller's thread."""

    def next(self, timeout: float | None = None) -> R:
        try:
            return super().next(timeout)
        except (StopIteration, multiprocessing.TimeoutError, KeyboardInterrupt):
            raise
        except Exception as exc:
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from translated.__cause__
