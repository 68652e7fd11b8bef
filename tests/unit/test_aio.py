"""`as_completed_async` over plain futures completed by the test (no processes)."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
from typing import Any

import pytest

from taskpool import as_completed_async

TIMEOUT = 10


def complete_from_a_thread(
    future: cf.Future[Any], value: Any, go: threading.Event
) -> threading.Thread:
    def run() -> None:
        go.wait(TIMEOUT)
        future.set_result(value)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_yields_futures_in_the_order_they_finish_each_once() -> None:
    async def main() -> list[object]:
        first: cf.Future[str] = cf.Future()
        second: cf.Future[str] = cf.Future()
        already: cf.Future[str] = cf.Future()
        already.set_result("already")
        go = threading.Event()
        thread = complete_from_a_thread(first, "first", go)
        order: list[object] = []
        async for future in as_completed_async([first, second, already, first]):
            order.append(future.result())
            if future is already:
                go.set()  # completed by another thread while the loop waits
            elif future is first:
                second.set_result("second")
        thread.join(TIMEOUT)
        return order

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == ["already", "first", "second"]


def test_the_loop_runs_while_it_waits() -> None:
    async def main() -> str:
        future: cf.Future[str] = cf.Future()

        async def finish_later() -> None:
            await asyncio.sleep(0)
            future.set_result("done")

        finisher = asyncio.ensure_future(
            finish_later()
        )  # runs only if the iteration yields to the loop
        async for done in as_completed_async([future]):
            await finisher
            return str(done.result())
        raise AssertionError("nothing yielded")

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == "done"


def test_timeout_counts_from_the_start_and_leaves_the_futures_alone() -> None:
    async def main() -> cf.Future[int]:
        never: cf.Future[int] = cf.Future()
        with pytest.raises(asyncio.TimeoutError, match="1 future"):
            async for _ in as_completed_async([never], timeout=0.05):
                pass
        return never

    never = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert not never.done()


def test_cancelling_the_waiting_task_cancels_the_futures_not_yielded() -> None:
    async def main() -> tuple[cf.Future[int], cf.Future[int]]:
        done: cf.Future[int] = cf.Future()
        done.set_result(1)
        pending: cf.Future[int] = cf.Future()
        reached = asyncio.Event()

        async def consume() -> None:
            async for _ in as_completed_async([done, pending]):
                reached.set()

        task = asyncio.ensure_future(consume())
        await reached.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return done, pending

    done, pending = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert done.result() == 1
    assert pending.cancelled()


def test_an_empty_input_yields_nothing() -> None:
    async def main() -> list[object]:
        none: list[cf.Future[int]] = []
        return [f async for f in as_completed_async(none)]

    assert asyncio.run(main()) == []
