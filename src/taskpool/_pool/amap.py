"""`amap`: an ordered map for coroutines, ``async for result in pool.amap(fn, items)``.

It drives an `IMapIterator`, so the window of chunk jobs in flight and the lazy reading of the input are imap's,
but it never blocks the event loop: each chunk's future is awaited (`JobFuture.__await__`: a done-callback hands
the outcome to the loop), and jobs are submitted only while the pool has room under ``max_pending``.

Threads: runs in the event loop's thread, which also reads the input (as results are taken). Only when the
pool has no room and none of this map's jobs is in flight does one submit wait, in a thread of the loop's default
executor, for room to come.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TypeVar

from .._core.aio import stop_all
from .imap import IMapIterator

__all__ = ["amap_results"]

R = TypeVar("R")


async def _refill(results: IMapIterator[R]) -> None:
    """Submit more chunks without blocking the loop (the loop's thread)."""
    if results._futures or results._pool._ledger.has_room():
        results._fill(
            lazy=True
        )  # stops at a full pool instead of waiting, with a job of ours in flight
        return
    # Nothing of ours in flight and no room: only a finished job of another caller makes room. Wait for it in
    # a thread, whose submit (once it has started) is seen through even if this task is cancelled.
    fill = asyncio.get_running_loop().run_in_executor(None, results._fill, True)
    try:
        await asyncio.shield(fill)
    except asyncio.CancelledError:
        fill.add_done_callback(lambda _: stop_all(list(results._futures)))
        raise


async def amap_results(results: IMapIterator[R]) -> AsyncGenerator[R, None]:
    """Yield the results of ``results``' chunk jobs in input order (the loop's thread).

    With a checkpoint, the recorded chunks are yielded where they belong, between the chunks that run.
    Cancelling the task while it waits here stops every job in flight (`JobFuture.stop`). When the iteration
    ends early in any other way (``break`` and closing, a job's exception, the input's), the jobs not started
    are cancelled and running ones finish.
    """
    try:
        await _refill(results)
        while True:
            replayed = results._take_replay()
            if replayed is not None:
                for value in replayed:
                    yield value
                continue
            if not results._futures:
                break
            future = results._futures[0]
            try:
                chunk = await future
            except asyncio.CancelledError:
                stop_all(list(results._futures))
                raise
            results._futures.popleft()
            results._chunk_taken()
            await _refill(results)
            for value in chunk:
                yield value
        if results._input_error is not None:
            error, results._input_error = results._input_error, None
            raise error
    finally:
        results._stop()
