"""User code on the event thread may raise anything or try to wait: the pool goes on, no future is left pending.

Callbacks, event handlers, done-callbacks and retry strategies run on the pool's event thread. Whatever they
raise, `BaseException` included, is logged with the job's id; a call that would wait for the event thread
from the event thread fails at once with an error that names the fix.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tenacity

from taskpool import Event, Retry, SerializationError, TaskPool
from tests import jobs

TIMEOUT = 30.0


@pytest.fixture(params=["process", "thread", "inline"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def pool(backend: str) -> Iterator[TaskPool]:
    p = TaskPool(2, backend=backend)
    try:
        yield p
    finally:
        p.terminate()


def _exit(_: object) -> None:
    sys.exit(3)


def _interrupt(_: object) -> None:
    raise KeyboardInterrupt


def test_a_callback_that_calls_sys_exit_does_not_stop_later_futures(
    pool: TaskPool, caplog: pytest.LogCaptureFixture
) -> None:
    first = pool.apply_async(jobs.square, (3,), callback=_exit)
    assert first.result(timeout=TIMEOUT) == 9
    assert pool.submit(jobs.square, 4).result(timeout=TIMEOUT) == 16
    assert "callback of job" in caplog.text


def test_an_error_callback_that_raises_keyboard_interrupt_is_isolated(pool: TaskPool) -> None:
    failing = pool.apply_async(jobs.raise_value_error, (1,), error_callback=_interrupt)
    with pytest.raises(ValueError, match="1"):
        failing.result(timeout=TIMEOUT)
    assert pool.submit(jobs.square, 5).result(timeout=TIMEOUT) == 25


def test_a_handler_that_raises_keyboard_interrupt_does_not_stop_the_pool(
    pool: TaskPool, caplog: pytest.LogCaptureFixture
) -> None:
    pool.on("job_succeeded", _interrupt)
    futures = [pool.submit(jobs.square, i) for i in range(5)]
    assert [f.result(timeout=TIMEOUT) for f in futures] == [0, 1, 4, 9, 16]
    assert "event handler for job_succeeded" in caplog.text


def _raising_wait(state: tenacity.RetryCallState) -> float:
    raise RuntimeError("this wait strategy is broken")


def test_a_retry_whose_wait_strategy_raises_fails_the_job_instead_of_leaving_it_pending(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TaskPool(2, backend=backend, retry=Retry(attempts=3, wait=_raising_wait)) as pool:
        future = pool.submit(jobs.raise_value_error, 7)
        with pytest.raises(ValueError, match="7"):
            future.result(timeout=TIMEOUT)
        assert future.attempts == 1
    assert "retry policy of job" in caplog.text


class _ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone (as with ``| head -1``)."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_parent_stdout_does_not_drop_any_outcome(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    with TaskPool(2, start_method=start_method) as pool:
        futures = [pool.submit(jobs.print_lines, f"job{i}", 3) for i in range(10)]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [3] * 10


def test_a_result_whose_unpickling_raises_system_exit_fails_that_job_only(
    start_method: str,
) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        bad = pool.submit(jobs.return_exits_on_unpickle)
        with pytest.raises(SerializationError) as info:
            bad.result(timeout=TIMEOUT)
        assert info.value.part == "result"
        assert "SystemExit" in str(info.value)
        assert pool.submit(jobs.square, 6).result(timeout=TIMEOUT) == 36


def test_a_log_record_whose_extra_does_not_pickle_keeps_the_value_repr(
    start_method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tests.extra")
    with TaskPool(2, start_method=start_method) as pool:
        assert pool.submit(jobs.log_with_unpicklable_extra, 5).result(timeout=TIMEOUT) == 5
    records = [r for r in caplog.records if r.name == "tests.extra"]
    assert [r.getMessage() for r in records] == ["with a lock 5"]
    assert "lock" in repr(records[0].__dict__["lock"])


# -- waiting on the event thread -------------------------------------------------------------------------


def _run_on_event_thread(pool: TaskPool, call: Any) -> BaseException | None:
    """Run ``call()`` in a callback of ``pool`` and return what it raised (None if nothing)."""
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def callback(_: object) -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            done.set()

    pool.apply_async(jobs.square, (1,), callback=callback)
    assert done.wait(TIMEOUT), "the callback never ran"
    return outcome[0]


@pytest.mark.parametrize(
    "wait",
    [
        "result",
        "exception",
        "wait",
        "get",
        "apply",
        "map",
        "imap",
        "starmap",
    ],
)
def test_waiting_for_the_same_pool_from_its_event_thread_fails_at_once(
    pool: TaskPool, wait: str
) -> None:
    future_waits = ("result", "exception", "wait", "get")
    if pool.backend == "inline" and wait in future_waits:
        pytest.skip("inline jobs finish inside submit: nothing is ever pending to wait for")
    # Still running when the callback waits for it, until the test sets ``release``.
    release = pool.shared.event()
    other = pool.submit(jobs.wait_for_event, release) if wait in future_waits else None

    def call() -> None:
        if other is not None:
            getattr(other, wait)(timeout=TIMEOUT)
        elif wait == "apply":
            pool.apply(jobs.square, (2,))
        elif wait == "map":
            pool.map(jobs.square, range(3))
        elif wait == "starmap":
            pool.starmap(jobs.add, [(1, 2)])
        else:
            list(pool.imap(jobs.square, range(3)))

    error = _run_on_event_thread(pool, call)
    release.set()
    if pool.backend == "inline" and wait in ("apply", "map", "imap", "starmap") and error is None:
        return  # the inline backend runs the job in the submitting thread: nothing to wait for, so it works
    assert isinstance(error, RuntimeError), error
    assert "add_done_callback" in str(error)
    assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9


def test_a_done_future_can_be_read_from_the_event_thread(pool: TaskPool) -> None:
    done = pool.submit(jobs.square, 2)
    assert done.result(timeout=TIMEOUT) == 4
    assert _run_on_event_thread(pool, lambda: done.result(timeout=1)) is None


def test_submit_without_waiting_works_from_the_event_thread(pool: TaskPool) -> None:
    chained: list[cf.Future[int]] = []
    assert _run_on_event_thread(pool, lambda: chained.append(pool.submit(jobs.square, 7))) is None
    assert chained[0].result(timeout=TIMEOUT) == 49


def test_submit_that_would_wait_for_max_pending_fails_at_once_on_the_event_thread(
    backend: str,
) -> None:
    if backend == "inline":
        pytest.skip("inline jobs finish inside submit; max_pending never waits")
    with TaskPool(2, backend=backend, max_pending=2) as pool:
        release = pool.shared.event()
        # Two jobs pending when the callback runs: the blocked one, and the callback's own (it is retired
        # after its callback), so a submit there would wait for a slot only the event thread can free.
        blocker = pool.submit(jobs.wait_for_event, release)
        error = _run_on_event_thread(pool, lambda: pool.submit(jobs.square, 1))
        release.set()
        assert blocker.result(timeout=TIMEOUT) is True
    assert isinstance(error, RuntimeError), error
    assert "max_pending" in str(error)


# -- terminate does not wait behind the event backlog ----------------------------------------------------


def test_terminate_cancels_every_unfinished_future_at_once_whatever_the_backlog(
    backend: str,
) -> None:
    """A slow job_succeeded handler and 2,000 tiny jobs: terminate() returns within about a second, every
    future is done (cancelled unless its outcome was delivered before), and handlers see nothing after it."""
    first_call = threading.Event()
    seen_after: list[int] = []
    terminated = threading.Event()

    def slow_handler(event: Event) -> None:
        first_call.set()
        if terminated.is_set():
            seen_after.append(event.job_id or 0)
        time.sleep(0.05)  # a slow handler: the backlog grows behind it

    pool = TaskPool(2, backend=backend)
    pool.on("job_succeeded", slow_handler)
    futures = [pool.submit(jobs.square, i) for i in range(2000)]
    assert first_call.wait(TIMEOUT)
    t0 = time.monotonic()
    terminated.set()
    pool.terminate()
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, (
        elapsed
    )  # measured about 0.1 s; the bound is generous for a loaded machine
    assert all(f.done() for f in futures)
    assert sum(f.cancelled() for f in futures) > 1000
    assert len(seen_after) <= 1  # at most the handler call that was running when terminate came
