"""`as_completed_async`: futures as they finish, for coroutines, without blocking the event loop.

Threads: the async generator runs in the event loop's thread. Each future gets one done-callback, which runs
where the future completes (a pool's event thread, or the loop's thread for a future already done) and only
hands the future to the loop with ``loop.call_soon_threadsafe``; no thread waits for any future.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
from collections.abc import AsyncGenerator, Iterable
from typing import Any, TypeVar

__all__ = ["as_completed_async", "stop_all"]

F = TypeVar("F", bound="cf.Future[Any]")

_TIMED_OUT = object()  # what the deadline's timer puts on the queue


def stop_all(futures: Iterable[cf.Future[Any]]) -> None:
    """Stop each future: `JobFuture.stop` (kills a running job's worker where it can), else ``cancel()``."""
    for future in futures:
        stop = getattr(future, "stop", None)
        if stop is not None:
            stop()
        else:
            future.cancel()


async def as_completed_async(
    futures: Iterable[F], timeout: float | None = None
) -> AsyncGenerator[F, None]:
    """Yield the futures as they finish (done, failed or cancelled): ``async for f in as_completed_async(fs)``.

    The asyncio counterpart of `as_completed`: it runs in the event loop and never blocks it.

    Cancelling the task while it waits here for the next future stops every future not yet yielded, as
    cancelling ``await future`` stops that one (`JobFuture.stop`: a job not started is cancelled; a running one's
    worker is killed on the process backend and for `spawn`; other futures are cancelled). Leaving the loop
    early in any other way (``break``, an exception in its body) leaves them alone.

    Args:
        futures: the futures to wait for (any `concurrent.futures.Future`, `JobFuture` included); duplicates
            are yielded once.
        timeout: seconds from the start of the iteration until every future must have finished (None:
            no limit).

    Raises:
        TimeoutError: ``timeout`` passed before every future finished (`asyncio.TimeoutError`; the futures
            left are not stopped).
    """
    loop = asyncio.get_running_loop()
    waiting = dict.fromkeys(futures)  # insertion-ordered and unique
    finished: asyncio.Queue[Any] = asyncio.Queue()
    listening = [True]  # cleared when the iteration ends: later callbacks hand nothing to the loop

    def on_done(future: cf.Future[Any]) -> None:
        if listening[0]:
            # RuntimeError: the loop has closed meanwhile; nobody is waiting for this any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finished.put_nowait, future)

    timer = None if timeout is None else loop.call_later(timeout, finished.put_nowait, _TIMED_OUT)
    try:
        for future in list(waiting):
            future.add_done_callback(on_done)
        while waiting:
            try:
                done = await finished.get()
            except asyncio.CancelledError:
                stop_all(list(waiting))
                raise
            if done is _TIMED_OUT:
                raise asyncio.TimeoutError(
                    f"{len(waiting)} future(s) did not finish within {timeout} s"
                )
            del waiting[done]
            yield done
    finally:
        listening[0] = False
        if timer is not None:
            timer.cancel()
