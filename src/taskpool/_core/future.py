"""`JobFuture`: the result of one submitted job.

A `JobFuture` is a `concurrent.futures.Future`, so `concurrent.futures.wait`, `as_completed` and
`asyncio.wrap_future` accept it, and it can be awaited directly (cancelling the awaiting task stops the job).
It also speaks the vocabulary of `multiprocessing.pool.AsyncResult` (`get`, `ready`, `successful`, `wait`).

Threads: any thread may wait on a future. Only the pool's event thread completes it (sets the result, the
exception or a cancellation) — except `cancel()`, which any thread may call on a job that has not been sent to a
worker yet.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import threading
from collections.abc import Callable, Generator
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from typing import Any, Generic, TypeVar

__all__ = ["JobFuture", "force_cancel"]

R = TypeVar("R")


_DONE = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED))
_CANCELLED = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED))

# Guards the transitions out of PENDING (to RUNNING, CANCELLED or FINISHED) of every JobFuture, so that
# cancel() and the scheduler's set_running_or_notify_cancel() cannot both win. One uncontended C lock is far
# cheaper than a Condition per future, which is made only when some thread has to wait (see `_condition`).
_transition = threading.Lock()


class JobFuture(cf.Future[R], Generic[R]):
    """The future of one job: its result, its exception, or its cancellation.

    Attributes:
        job_id: the pool-unique id of the job.
        name: the job's name (its function's qualified name unless given with ``options(name=...)``).
        attempts: how many times the job has been started so far (1 after a run without retries).

    How it differs inside from `concurrent.futures.Future` (not in behaviour): a pool makes one future per
    job, so the per-future `threading.Condition` is made lazily, by the first thread that has to block
    (`result`, `exception`, `wait`, `concurrent.futures.wait`, `as_completed`, `add_done_callback` on a pending
    future). The completing side writes the new state first and then, if the Condition exists, takes it to
    notify; a waiter takes the Condition and then reads the state. Either the waiter sees the new state, or it
    was already waiting when the completer took the Condition: no wake-up is lost.
    """

    def __init__(self, job_id: int = 0, name: str = "", completer: int | None = None) -> None:
        # Deliberately not super().__init__(): it makes the Condition eagerly; these are its other fields.
        self._state = PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Callable[[JobFuture[R]], object]] = []
        self.job_id = job_id
        self.name = name
        self.attempts = 0
        self._items = 1  # how many input items the job covers (a map chunk covers several)
        # Set by the pool: asks the backend to stop the job's worker. None where nothing can be stopped.
        self._stopper: Callable[[JobFuture[Any]], bool] | None = None
        # The thread that completes this future (its pool's event thread): it must never wait for it.
        self._completer = completer

    @property
    def _condition(self) -> threading.Condition:
        cond: threading.Condition | None = self.__dict__.get("_cond")
        if cond is None:
            # setdefault is atomic: if two threads race here, both get the one that was stored first.
            cond = self.__dict__.setdefault("_cond", threading.Condition())
        return cond

    @_condition.setter  # cf.Future declares a writable attribute; nothing here sets it
    def _condition(self, value: threading.Condition) -> None:
        self.__dict__["_cond"] = value

    def _notify(self, how: str | None) -> None:
        """Wake every waiter, after the state changed (any thread)."""
        cond: threading.Condition | None = self.__dict__.get("_cond")
        if cond is not None:
            with cond:
                if how is not None:
                    for waiter in self._waiters:
                        getattr(waiter, how)(self)
                cond.notify_all()

    # -- concurrent.futures.Future, with lock-free fast paths ------------------------------------------
    def done(self) -> bool:
        return self._state in _DONE

    def cancelled(self) -> bool:
        return self._state in _CANCELLED

    def running(self) -> bool:
        return self._state == RUNNING

    def cancel(self) -> bool:
        with _transition:
            state = self._state
            if state in (RUNNING, FINISHED):
                return False
            if state in _CANCELLED:
                return True
            self._state = CANCELLED
        self._notify(None)
        self._invoke_callbacks()
        return True

    def set_running_or_notify_cancel(self) -> bool:
        with _transition:
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                return True
            if state == CANCELLED_AND_NOTIFIED:
                return False  # force-cancelled (terminate) before a worker took it: do not run it
            if state != CANCELLED:
                raise RuntimeError(f"future in unexpected state: {state}")
            self._state = CANCELLED_AND_NOTIFIED
        self._notify("add_cancelled")
        return False

    def set_result(self, result: R) -> None:
        with _transition:
            if self._state in _DONE:
                raise cf.InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._state = FINISHED
        self._notify("add_result")
        self._invoke_callbacks()

    def set_exception(self, exception: BaseException | None) -> None:
        with _transition:
            if self._state in _DONE:
                raise cf.InvalidStateError(f"{self._state}: {self!r}")
            self._exception = exception
            self._state = FINISHED
        self._notify("add_exception")
        self._invoke_callbacks()

    def _invoke_callbacks(self) -> None:
        for callback in self._done_callbacks:
            try:
                callback(self)
            except Exception:
                logging.getLogger("concurrent.futures").exception(
                    "exception calling callback for %r", self
                )

    def _outcome(self) -> R:
        if self._exception is not None:
            try:
                raise self._exception
            finally:
                self = None  # type: ignore[assignment]  # break the cycle through the traceback
        return self._result  # type: ignore[no-any-return]

    def _refuse_deadlock(self, timeout: float | None) -> None:
        """Refuse to block the one thread that would complete this future (its pool's event thread)."""
        if (timeout is None or timeout > 0) and threading.get_ident() == self._completer:
            raise RuntimeError(
                f"waiting for job {self.name!r} in a callback or event handler of its own pool would never "
                "end: the thread waiting is the one that completes it. Chain the work with "
                "future.add_done_callback(...) instead, or submit without waiting"
            )

    def result(self, timeout: float | None = None) -> R:
        state = self._state
        if state == FINISHED:
            return self._outcome()
        if state in _CANCELLED:
            raise cf.CancelledError()
        self._refuse_deadlock(timeout)
        with self._condition:
            if self._state not in _DONE:
                self._condition.wait(timeout)
            state = self._state
        if state == FINISHED:
            return self._outcome()
        if state in _CANCELLED:
            raise cf.CancelledError()
        raise cf.TimeoutError(f"job {self.name!r} did not finish within {timeout} s")

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state not in _DONE:
            self._refuse_deadlock(timeout)
            with self._condition:
                if self._state not in _DONE:
                    self._condition.wait(timeout)
        state = self._state
        if state in _CANCELLED:
            raise cf.CancelledError()
        if state != FINISHED:
            raise cf.TimeoutError(f"job {self.name!r} did not finish within {timeout} s")
        return self._exception

    def add_done_callback(self, fn: Callable[[cf.Future[R]], object]) -> None:
        if self._state not in _DONE:
            with self._condition:
                if self._state not in _DONE:
                    self._done_callbacks.append(fn)
                    return
        try:
            fn(self)
        except Exception:
            logging.getLogger("concurrent.futures").exception(
                "exception calling callback for %r", self
            )

    def __repr__(self) -> str:
        state = self._state
        if state == FINISHED:
            if self._exception is not None:
                how = f"finished raised {type(self._exception).__name__}"
            else:
                how = f"finished returned {type(self._result).__name__}"
        else:
            how = "cancelled" if state in _CANCELLED else state.lower()
        return f"<JobFuture {self.job_id} {self.name!r} {how}>"

    # -- multiprocessing.pool.AsyncResult vocabulary -------------------------------------------------
    def get(self, timeout: float | None = None) -> R:
        """Return the job's result, or raise its exception (runs in the calling thread).

        Unlike `result`, a timeout raises `multiprocessing.TimeoutError`, as `AsyncResult.get` does.
        """
        try:
            return self.result(timeout)
        except cf.TimeoutError as exc:
            if self.done():
                raise  # the job's own TimeoutError, not ours
            raise multiprocessing.TimeoutError(str(exc)) from None

    def ready(self) -> bool:
        """Whether the job has finished (successfully, with an error, or cancelled)."""
        return self.done()

    def successful(self) -> bool:
        """Whether the job finished without raising; `ValueError` if it has not finished (as `AsyncResult`)."""
        if not self.done():
            raise ValueError(f"job {self.name!r} is not ready; wait() for it first")
        return not self.cancelled() and self.exception(0) is None

    def wait(self, timeout: float | None = None) -> None:
        """Block the calling thread until the job finishes or ``timeout`` seconds pass."""
        if self._state in _DONE:
            return
        self._refuse_deadlock(timeout)
        with self._condition:
            if self._state not in _DONE:
                self._condition.wait(timeout)

    def __await__(self) -> Generator[Any, None, R]:
        """Await the job from a coroutine: ``result = await pool.submit(fn)`` (the event loop's thread).

        Cancelling the awaiting task stops the job (`stop`): not only cancels it if it has not started, as
        `asyncio.wrap_future` alone would, but kills a running one's worker where the backend can.
        """
        import asyncio  # here, not at import: a pool that is never awaited does not pay for asyncio

        waiter = asyncio.wrap_future(self)
        try:
            return (yield from waiter.__await__())
        except asyncio.CancelledError:
            self.stop()  # nothing to do if the job ended first (or was cancelled: that is what woke us)
            raise

    # -- stopping ------------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Cancel the job if it is pending, or stop it if it is running.

        A running job is stopped by killing its worker process (which the pool replaces); the future then
        ends cancelled. Returns False where the job has already finished or cannot be stopped (the thread
        and inline backends cannot stop a running job).
        """
        if self.done():
            return False  # finished, failed or cancelled already: nothing left to stop
        if self.cancel():
            return True
        if self.done():
            return False
        stopper = self._stopper
        return stopper(self) if stopper is not None else False


def force_cancel(future: JobFuture[Any]) -> bool:
    """Move a pending or running future to the cancelled state (event thread only).

    `concurrent.futures.Future.cancel` refuses running futures; a job whose worker we killed on request,
    or that `terminate` cut short, is cancelled all the same. The state goes straight to
    CANCELLED_AND_NOTIFIED, since no worker will call `set_running_or_notify_cancel` for it.
    """
    with _transition:
        state = future._state
        if state in (FINISHED, CANCELLED_AND_NOTIFIED):
            return False
        future._state = CANCELLED_AND_NOTIFIED
    future._notify("add_cancelled")
    if state != CANCELLED:  # a CANCELLED future ran its callbacks when cancel() put it there
        future._invoke_callbacks()
    return True
