"""`ExecutorView`: a `TaskPool` seen as a `concurrent.futures.Executor`.

It keeps the Executor contract wherever taskpool has no reason to differ: `submit` after `shutdown` (or once the
interpreter is shutting down) raises `RuntimeError`; `map` takes ``timeout`` (counted from the call) and
``chunksize`` (items sent to a worker together), yields results lazily and in input order, and cancels the jobs
not started when its iterator is closed or fails; ``shutdown(wait=False)`` returns at once and the workers exit
once the pending jobs are done. Where it differs on purpose (a crash fails one job instead of breaking the
executor; `map` reads its input as results are taken) docs/futures.md says so.

Threads: `submit`, `map` and `shutdown` run in the caller's thread; the iterator `map` returns runs in the thread
that iterates it. ``shutdown(wait=False)`` starts one short-lived thread (``taskpool-executor-join``) that joins
the pool once its jobs are done, so that the workers and the pool's threads end without anyone waiting for them.
The flag that refuses submissions during interpreter shutdown is set by `threading`'s exit hook (main thread),
which runs before the non-daemon threads are joined, as the stdlib executors' own flag is.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .._core.job import JobKind
from .._errors import PoolClosedError
from .imap import IMapIterator

if TYPE_CHECKING:
    from .pool import TaskPool

__all__ = ["ExecutorView"]

P = ParamSpec("P")
R = TypeVar("R")

_exit_flag_lock = threading.Lock()
_exit_flag_registered = False
_interpreter_exiting = False


def _note_interpreter_exit() -> None:
    global _interpreter_exiting
    _interpreter_exiting = True


def _register_exit_flag() -> None:
    """Have the interpreter's shutdown set the flag, once (the first `as_executor()`; caller's thread)."""
    global _exit_flag_registered
    with _exit_flag_lock:
        if _exit_flag_registered:
            return
        _exit_flag_registered = True
        # What concurrent.futures uses: these run when the main thread ends, before non-daemon threads are
        # joined, so a thread still submitting then is refused. atexit would come too late for those threads.
        register = getattr(threading, "_register_atexit", None)
        if register is None:  # pragma: no cover - every supported CPython has it
            import atexit

            atexit.register(_note_interpreter_exit)
            return
        try:
            register(_note_interpreter_exit)
        except RuntimeError:  # "can't register atexit after shutdown": it is under way
            _note_interpreter_exit()


def _refusal() -> RuntimeError:
    if _interpreter_exiting:
        return RuntimeError("cannot schedule new futures after interpreter shutdown")
    return RuntimeError("cannot schedule new futures after shutdown")


def _in_order(results: IMapIterator[R], end: float | None) -> Iterator[R]:
    """Yield ``results`` until ``end`` (a `time.monotonic` deadline); cancel the jobs left when closed."""
    try:
        if end is None:
            yield from results
            return
        while True:
            try:
                yield results.next(end - time.monotonic())
            except StopIteration:
                return
            except multiprocessing.TimeoutError:
                raise cf.TimeoutError() from None
    finally:
        results._cancel_pending()


class ExecutorView(cf.Executor):
    """A `TaskPool` as a `concurrent.futures.Executor`; ``shutdown`` closes the pool (and joins it)."""

    def __init__(self, pool: TaskPool) -> None:
        self._pool = pool
        self._joiner: threading.Thread | None = None
        _register_exit_flag()

    def __repr__(self) -> str:
        return f"<ExecutorView of {self._pool!r}>"

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[R]:
        """Submit ``fn(*args, **kwargs)``; returns its `JobFuture` (caller's thread).

        Raises:
            RuntimeError: the executor was shut down (or its pool closed), or the interpreter is shutting
                down, as the stdlib executors raise it.
        """
        if _interpreter_exiting:
            raise _refusal()
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except PoolClosedError as exc:
            raise _refusal() from exc

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """``fn(*args)`` for each tuple of items of ``iterables``, the results lazily and in input order.

        Items are sent to workers ``chunksize`` at a time (one job per chunk), as `TaskPool.imap` sends them;
        the input is read as results are taken, with a bounded number of chunks in flight. A job's exception
        is raised when its turn comes, and the jobs not started yet are then cancelled, as they are when the
        iterator is closed before its end.

        Args:
            timeout: seconds from this call until every result must have come; the iterator raises
                `TimeoutError` (``concurrent.futures.TimeoutError``) when it passes (None: no limit).
            chunksize: how many items each job takes.

        Raises:
            ValueError: ``chunksize`` is less than 1.
            RuntimeError: the executor was shut down, or the interpreter is shutting down.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end = None if timeout is None else time.monotonic() + timeout
        if _interpreter_exiting:
            raise _refusal()
        try:
            results: IMapIterator[R] = IMapIterator(
                self._pool,
                fn,
                zip(*iterables, strict=False),
                chunksize,
                JobKind.STARCHUNK,
                True,
                False,
            )
        except PoolClosedError as exc:
            raise _refusal() from exc
        return _in_order(results, end)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more jobs; with ``wait``, return once every job is done and the workers have exited.

        Without ``wait`` it returns at once, and the workers exit once the pending jobs are done. Calling it
        again does nothing more.

        Args:
            wait: wait for the pending jobs and the workers.
            cancel_futures: first cancel every job that has not started.
        """
        self._pool.shutdown(wait, cancel_futures=cancel_futures)
        if not wait and not self._pool._joined and self._joiner is None:
            # Nobody will call join(): a short-lived thread does, once the jobs are done. It holds the pool
            # only until then.
            self._joiner = threading.Thread(
                target=self._pool.join, name="taskpool-executor-join", daemon=True
            )
            # RuntimeError: the interpreter is shutting down, and its exit hook stops the pool.
            with contextlib.suppress(RuntimeError):
                self._joiner.start()
