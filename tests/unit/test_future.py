"""`JobFuture` in every state, without a pool: pending, running, finished, failed, cancelled, stopped.

Another thread plays the pool's event thread where a test needs the future completed while it waits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import threading
import time
from typing import Any

import pytest

from taskpool import JobFuture
from taskpool._core.future import force_cancel

# A bound on every blocking call here; the waits that must time out use SHORT.
TIMEOUT = 10.0
SHORT = 0.05


def pending() -> JobFuture[int]:
    return JobFuture(7, "job")


def running() -> JobFuture[int]:
    f = pending()
    assert f.set_running_or_notify_cancel()
    return f


def succeeded(value: int = 42) -> JobFuture[int]:
    f = running()
    f.set_result(value)
    return f


def failed(error: BaseException | None = None) -> JobFuture[int]:
    f = running()
    f.set_exception(error if error is not None else ValueError("bad"))
    return f


def complete_later(
    future: JobFuture[int], value: int, started: threading.Event
) -> threading.Thread:
    """Set ``future``'s result from another thread once the waiter says it is about to wait."""

    def run() -> None:
        started.wait(TIMEOUT)
        future.set_result(value)

    thread = threading.Thread(target=run, name="completer")
    thread.start()
    return thread


def test_identity_and_repr() -> None:
    f = JobFuture[int](3, "fetch")
    assert (f.job_id, f.name, f.attempts) == (3, "fetch", 0)
    assert "3" in repr(f)
    assert "'fetch'" in repr(f)
    assert "pending" in repr(f)
    assert isinstance(f, cf.Future)


@pytest.mark.parametrize("make", [pending, running])
def test_unfinished_states(make: Any) -> None:
    f = make()
    assert not f.ready()
    assert not f.done()
    with pytest.raises(ValueError, match="not ready"):
        f.successful()
    with pytest.raises(multiprocessing.TimeoutError, match="did not finish within"):
        f.get(SHORT)
    with pytest.raises(cf.TimeoutError):
        f.result(SHORT)
    t0 = time.monotonic()
    f.wait(SHORT)  # returns after the timeout, without raising
    assert SHORT * 0.5 <= time.monotonic() - t0 < TIMEOUT


def test_succeeded() -> None:
    f = succeeded(5)
    assert f.ready()
    assert f.successful()
    assert f.get() == 5
    assert f.get(0) == 5
    assert f.result(0) == 5
    f.wait(0)
    assert not f.cancel()
    assert not f.stop()
    assert not force_cancel(f)
    assert f.result(0) == 5


def test_failed() -> None:
    f = failed(KeyError("k"))
    assert f.ready()
    assert not f.successful()
    with pytest.raises(KeyError):
        f.get(0)
    assert isinstance(f.exception(0), KeyError)
    assert not f.stop()


def test_a_job_that_raised_timeout_error_is_not_a_wait_timeout() -> None:
    f = failed(TimeoutError("the job's own"))
    with pytest.raises(TimeoutError, match="the job's own") as info:
        f.get(SHORT)
    assert not isinstance(info.value, multiprocessing.TimeoutError)


def test_cancel_a_pending_future() -> None:
    f = pending()
    calls: list[cf.Future[int]] = []
    f.add_done_callback(calls.append)
    assert f.cancel()
    assert f.cancelled()
    assert f.ready()
    assert not f.successful()
    with pytest.raises(cf.CancelledError):
        f.get(0)
    assert calls == [f]
    assert f.cancel()  # as cf.Future: cancelling a cancelled future says True
    assert not f.stop()  # but there is nothing left to stop


def test_a_running_future_does_not_cancel_but_stops_through_its_stopper() -> None:
    f = running()
    assert not f.cancel()
    assert not f.stop()  # nothing can stop it: no stopper
    asked: list[JobFuture[Any]] = []

    def stopper(future: JobFuture[Any]) -> bool:
        asked.append(future)
        return True

    f._stopper = stopper
    assert f.stop()
    assert asked == [f]
    assert not f.done()  # the pool cancels it when the worker is gone, not stop() itself


def test_stop_a_pending_future_cancels_without_the_stopper() -> None:
    f = pending()
    f._stopper = lambda future: pytest.fail("a pending job needs no stopper")
    assert f.stop()
    assert f.cancelled()


def test_force_cancel_a_running_future_notifies_everyone() -> None:
    f = running()
    calls: list[cf.Future[int]] = []
    f.add_done_callback(calls.append)
    waiting = threading.Event()
    result: list[Any] = []

    def waiter() -> None:
        waiting.set()
        done, _ = cf.wait([f], timeout=TIMEOUT)
        result.append(done)

    thread = threading.Thread(target=waiter, name="waiter")
    thread.start()
    assert waiting.wait(TIMEOUT)
    assert force_cancel(f)
    thread.join(TIMEOUT)
    assert result == [{f}]
    assert f.cancelled()
    assert calls == [f]
    with pytest.raises(cf.CancelledError):
        f.result(0)
    assert not force_cancel(f)  # once only
    assert calls == [f]


def test_force_cancel_a_pending_future_counts_as_done_for_wait() -> None:
    f = pending()
    assert force_cancel(f)
    done, not_done = cf.wait([f], timeout=SHORT)
    assert done == {f}
    assert not not_done
    futures: list[cf.Future[int]] = [f]
    assert list(cf.as_completed(futures, timeout=SHORT)) == [f]


def test_force_cancel_a_finished_future_changes_nothing() -> None:
    f = failed()
    assert not force_cancel(f)
    assert isinstance(f.exception(0), ValueError)


def test_wait_and_get_wake_when_the_result_arrives() -> None:
    f = running()
    about_to_wait = threading.Event()
    thread = complete_later(f, 9, about_to_wait)
    about_to_wait.set()
    f.wait(TIMEOUT)
    assert f.ready()
    assert f.get(TIMEOUT) == 9
    thread.join(TIMEOUT)


def test_await_a_future() -> None:
    async def main() -> tuple[int, int]:
        late = running()
        about_to_wait = threading.Event()
        thread = complete_later(late, 2, about_to_wait)
        about_to_wait.set()
        value = await asyncio.wait_for(late, TIMEOUT)
        thread.join(TIMEOUT)
        return await succeeded(1), value

    assert asyncio.run(main()) == (1, 2)


def test_await_a_failed_or_cancelled_future() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="bad"):
            await failed()
        cancelled = pending()
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    asyncio.run(main())


def test_repr_names_the_job_once_and_its_state() -> None:
    f: JobFuture[int] = JobFuture(7, "parse")
    assert repr(f) == "<JobFuture 7 'parse' pending>"
    f.set_result(3)
    assert repr(f) == "<JobFuture 7 'parse' finished returned int>"
    g: JobFuture[int] = JobFuture(8, "load")
    g.set_exception(ValueError("x"))
    assert repr(g) == "<JobFuture 8 'load' finished raised ValueError>"


def test_a_timeout_says_which_job_and_how_long() -> None:
    f: JobFuture[int] = JobFuture(9, "slow")
    with pytest.raises(cf.TimeoutError, match=r"job 'slow' did not finish within 0.01 s"):
        f.result(timeout=0.01)
    with pytest.raises(cf.TimeoutError, match=r"job 'slow' did not finish within 0.01 s"):
        f.exception(timeout=0.01)


def test_a_force_cancelled_future_is_not_run_when_a_worker_takes_it_late() -> None:
    f: JobFuture[int] = JobFuture(5, "late")
    assert force_cancel(f)  # terminate cancelled it while it waited in a backend's queue
    assert f.set_running_or_notify_cancel() is False  # the worker skips it instead of raising
    assert f.cancelled()
