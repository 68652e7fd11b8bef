"""`JobFuture`: the result of one submitted job.

A `JobFuture` is a `concurrent.futures.Future`, so `concurrent.futures.wait`, `as_completed` and
`asyncio.wrap_future` accept it, and it can be awaited directly. It also speaks the vocabulary of
`multiprocessing.pool.AsyncResult` (`get`, `ready`, `successful`, `wait`).

Threads: any thread may wait on a future. Only the pool's event thread completes it (sets the result, the
exception or a cancellation) — except `cancel()`, which any thread may call on a job that has not been sent to a
worker yet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Generator
from concurrent.futures._base import CANCELLED_AND_NOTIFIED, FINISHED, RUNNING
from typing import Any, Generic, TypeVar

__all__ = ["JobFuture"]

R = TypeVar("R")


class JobFuture(cf.Future[R], Generic[R]):
    """The future of one job: its result, its exception, or its cancellation.

    Attributes:
        job_id: the pool-unique id of the job.
        name: the job's name (its function's qualified name unless given with ``options(name=...)``).
        attempts: how many times the job has been started so far (1 after a run without retries).
    """

    # __weakref__ and __dict__ come from cf.Future; only plain attributes are added here.
    def __init__(self, job_id: int = 0, name: str = "") -> None:
        super().__init__()
        self.job_id = job_id
        self.name = name
        self.attempts = 0
        self._items = 1  # how many input items the job covers (a map chunk covers several)
        # Set by the pool: asks the backend to stop the job's worker. None where nothing can be stopped.
        self._stopper: Callable[[JobFuture[Any]], bool] | None = None

    def __repr__(self) -> str:
        return f"<JobFuture {self.job_id} {self.name!r} {super().__repr__()[1:-1]}>"

    # -- multiprocessing.pool.AsyncResult vocabulary -------------------------------------------------
    def get(self, timeout: float | None = None) -> R:
        """Return the job's result, or raise its exception (runs in the calling thread).

        Unlike `result`, a timeout raises `multiprocessing.TimeoutError`, as `AsyncResult.get` does.
        """
        try:
            return self.result(timeout)
        except cf.TimeoutError:
            if self.done():
                raise  # the job's own TimeoutError, not ours
            raise multiprocessing.TimeoutError(
                f"job {self.name!r} did not finish within {timeout} s"
            ) from None

    def ready(self) -> bool:
        """Whether the job has finished (successfully, with an error, or cancelled)."""
        return self.done()

    def successful(self) -> bool:
        """Whether the job finished without raising.

        Raises:
            ValueError: the job has not finished yet (as `AsyncResult.successful` does).
        """
        if not self.done():
            raise ValueError(f"job {self.name!r} is not ready; wait() for it first")
        return not self.cancelled() and self.exception(0) is None

    def wait(self, timeout: float | None = None) -> None:
        """Block the calling thread until the job finishes or ``timeout`` seconds pass."""
        with self._condition:  # type: ignore[attr-defined]
            if not self.done():
                self._condition.wait(timeout)  # type: ignore[attr-defined]

    def __await__(self) -> Generator[Any, None, R]:
        """Await the job from a coroutine: ``result = await pool.submit(fn)``."""
        return asyncio.wrap_future(self).__await__()

    # -- stopping ------------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Cancel the job if it is pending, or stop it if it is running.

        A running job is stopped by killing its worker process (which the pool replaces); the future then
        ends cancelled. Returns False where the job has already finished or cannot be stopped (the thread
        and inline backends cannot stop a running job).
        """
        if self.cancel():
            return True
        if self.done():
            return False
        stopper = self._stopper
        return stopper(self) if stopper is not None else False

    def _force_cancel(self) -> bool:
        """Move a *running* future to the cancelled state (event thread only).

        `concurrent.futures.Future.cancel` refuses running futures; a job whose worker we killed on request
        is cancelled all the same, so this does what `cancel` does, for a running future.
        """
        with self._condition:  # type: ignore[attr-defined]
            if self._state == FINISHED or self._state == CANCELLED_AND_NOTIFIED:  # type: ignore[attr-defined]
                return False
            running = self._state == RUNNING  # type: ignore[attr-defined]
            if running:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:  # type: ignore[attr-defined]
                    waiter.add_cancelled(self)
                self._condition.notify_all()  # type: ignore[attr-defined]
        if not running:
            if not self.cancel():
                return False
            # cancel() leaves a pending future CANCELLED, which cf.wait and as_completed count as done only
            # once set_running_or_notify_cancel() is called; no worker will take this job to call it.
            self.set_running_or_notify_cancel()
            return True
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True
