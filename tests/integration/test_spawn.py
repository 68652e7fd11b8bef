"""`taskpool.spawn`: one call in one dedicated process.

Results, the job's own exceptions, crashes, timeouts, stops, retries, events, threads, logs and prints, and bad
input, with real child processes. The cheap cases run under every start method; the rest under the default
(forkserver on Linux). Order comes from futures and `threading.Event`s set by event handlers, never from
sleeps, and every wait has a timeout. The autouse ``no_leftovers`` fixture checks that each test leaves no child
process and no taskpool thread behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from typing_extensions import assert_type

import taskpool
from taskpool import (
    Event,
    JobFuture,
    JobTimeoutError,
    RemoteTraceback,
    Retry,
    SerializationError,
    Spawner,
    WorkerCrashedError,
    spawn,
)

from .. import _spawn_jobs as jobs
from ..jobs import FailsToUnpickle, Unpicklable
from ._aio import gone_within

if TYPE_CHECKING:
    from pathlib import Path

TIMEOUT = jobs.TIMEOUT


class Recorder:
    """Collects events (on the spawn's event thread) and signals when one of a given kind has arrived."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived: dict[str, threading.Event] = {}

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.arrived.setdefault(event.kind, threading.Event()).set()

    def wait(self, kind: str) -> bool:
        return self.arrived.setdefault(kind, threading.Event()).wait(TIMEOUT)

    def handlers(self, *kinds: taskpool.EventKind) -> dict[taskpool.EventKind, Any]:
        for kind in kinds:
            self.arrived.setdefault(kind, threading.Event())
        return dict.fromkeys(kinds, self)

    def pids(self, kind: str) -> list[int | None]:
        return [e.pid for e in self.events if e.kind == kind]


def _child_pids() -> set[int]:
    """Our child processes, except the forkserver and the resource tracker, which multiprocessing keeps."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if "forkserver" not in cmdline and "resource_tracker" not in cmdline:
            pids.add(child.pid)
    return pids


def _taskpool_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("taskpool-")}


# -- results -------------------------------------------------------------------------------------------


def test_result_under_each_start_method(start_method: str) -> None:
    future = spawn.options(start_method=start_method)(jobs.add, 2, 3)
    assert future.result(timeout=TIMEOUT) == 5
    assert future.name == "add"
    assert future.attempts == 1


def test_runs_in_another_process_each_time() -> None:
    first, second = spawn(jobs.getpid), spawn(jobs.getpid)
    pids = {first.result(timeout=TIMEOUT), second.result(timeout=TIMEOUT)}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_lambdas_and_closures_under_each_start_method(start_method: str) -> None:
    base = 10

    def closure(x: int) -> int:
        return x + base

    spawner = spawn.options(start_method=start_method)
    assert spawner(lambda x: x * base, 4).result(timeout=TIMEOUT) == 40
    assert spawner(closure, 5).result(timeout=TIMEOUT) == 15


def test_keywords_named_like_options_reach_the_function() -> None:
    kwargs: dict[str, Any] = {
        "timeout": 1,
        "start_method": "x",
        "name": "n",
        "retry": "r",
        "on": "o",
    }
    future = spawn(jobs.options_as_keywords, **kwargs)
    assert future.result(timeout=TIMEOUT) == kwargs


def test_future_can_be_awaited() -> None:
    async def main() -> int:
        return await spawn(jobs.add, 20, 22)

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == 42


def test_done_callback_gets_the_finished_future() -> None:
    seen: list[cf.Future[int]] = []
    called = threading.Event()

    def callback(f: cf.Future[int]) -> None:
        seen.append(f)
        called.set()

    future = spawn(jobs.add, 1, 1)
    future.add_done_callback(callback)
    assert called.wait(TIMEOUT)
    assert seen == [future]
    assert seen[0].result(timeout=0) == 2


# -- failures ------------------------------------------------------------------------------------------


def test_exception_comes_back_as_itself_with_the_remote_traceback(start_method: str) -> None:
    future = spawn.options(start_method=start_method)(jobs.raise_custom, 7)
    with pytest.raises(jobs.CustomError) as info:
        future.result(timeout=TIMEOUT)
    assert info.value.args == ("custom failure", 7)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise_custom" in cause.tb
    assert "CustomError: ('custom failure', 7)" in cause.tb


def test_exit_fails_with_worker_crashed_and_the_exit_code(start_method: str) -> None:
    events = Recorder()
    future = spawn.options(start_method=start_method, on=events.handlers("worker_started"))(
        jobs.exit_with, 3
    )
    error = future.exception(timeout=TIMEOUT)
    assert isinstance(error, WorkerCrashedError)
    assert error.exitcode == 3
    assert error.signal is None
    assert error.job == "exit_with"
    assert error.pid == events.pids("worker_started")[0]
    assert error.pid != os.getpid()


def test_sigkill_fails_with_worker_crashed_and_the_signal() -> None:
    future = spawn(jobs.kill_self)
    error = future.exception(timeout=TIMEOUT)
    assert isinstance(error, WorkerCrashedError)
    assert error.signal == signal.SIGKILL
    assert error.exitcode == -signal.SIGKILL
    assert error.pid is not None
    assert not psutil.pid_exists(error.pid)


def test_arguments_that_fail_to_unpickle_in_the_child() -> None:
    future = spawn(jobs.add, FailsToUnpickle(), 1)  # type: ignore[arg-type]
    error = future.exception(timeout=TIMEOUT)
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where, error.job) == (
        "arguments",
        "unpickle",
        "worker",
        "add",
    )


# -- timeouts and stops ----------------------------------------------------------------------------------


def test_timeout_fails_promptly_and_kills_the_process() -> None:
    events = Recorder()
    began = time.monotonic()
    future = spawn.options(timeout=0.5, on=events.handlers("job_started"))(jobs.sleep_for, 60.0)
    error = future.exception(timeout=TIMEOUT)
    elapsed = time.monotonic() - began
    assert isinstance(error, JobTimeoutError)
    assert isinstance(error, TimeoutError)
    assert error.timeout == 0.5
    assert elapsed < 0.5 + 5.0  # the deadline, plus process start-up and the kill on a slow machine
    pid = events.pids("job_started")[0]
    assert pid is not None
    assert not psutil.pid_exists(pid)


def test_stop_kills_the_process_and_cancels_the_future() -> None:
    events = Recorder()
    future = spawn.options(on=events.handlers("job_started", "job_cancelled"))(jobs.sleep_for, 60.0)
    assert events.wait("job_started")
    pid = events.pids("job_started")[0]
    assert pid is not None
    assert psutil.pid_exists(pid)
    assert future.stop()
    done, _ = cf.wait([future], timeout=TIMEOUT)
    assert done == {future}
    assert future.cancelled()
    assert events.wait("job_cancelled")
    assert not psutil.pid_exists(pid)


def test_cancelling_the_task_awaiting_a_spawn_kills_its_process_within_a_second() -> None:
    events = Recorder()
    future = spawn.options(on=events.handlers("job_started"))(jobs.sleep_for, 60.0)

    async def main() -> float:
        task = asyncio.ensure_future(_await(future))
        assert await asyncio.to_thread(events.wait, "job_started")
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return cancelled_at

    cancelled_at = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    pid = events.pids("job_started")[0]
    assert pid is not None
    assert gone_within(pid, cancelled_at + 1.0 - time.monotonic())
    done, _ = cf.wait([future], timeout=TIMEOUT)
    assert done == {future}
    assert future.cancelled()


async def _await(future: JobFuture[float]) -> float:
    return await future


def test_stop_right_away_cancels_the_future() -> None:
    # Whether the job has been sent to the child yet or not, the future ends cancelled.
    future = spawn(jobs.sleep_for, 60.0)
    assert future.stop()
    done, _ = cf.wait([future], timeout=TIMEOUT)
    assert done == {future}
    assert future.cancelled()


# -- retries and events ----------------------------------------------------------------------------------


def test_retry_runs_each_attempt_in_a_fresh_process(tmp_path: Path) -> None:
    events = Recorder()
    spawner = spawn.options(
        retry=Retry(attempts=2, on_crash=True), on=events.handlers("worker_started", "job_retrying")
    )
    future = spawner(jobs.crash_once, str(tmp_path / "marker"))
    pid = future.result(timeout=TIMEOUT)
    assert future.attempts == 2
    retrying = [e for e in events.events if e.kind == "job_retrying"]
    assert len(retrying) == 1
    assert isinstance(retrying[0].exception, WorkerCrashedError)
    first, second = events.pids("worker_started")
    assert first != second
    assert pid == second


def test_a_death_after_the_job_ended_keeps_its_result(start_method: str, tmp_path: Path) -> None:
    """The child dies once the job is over, whether or not its result was sent: the job ran once, and its
    result is the outcome, even with retries on crash."""
    path = tmp_path / "runs"
    spawner = spawn.options(start_method=start_method, retry=Retry(attempts=3, on_crash=True))
    future = spawner(jobs.record_then_die_after_returning, str(path), "kept")
    assert future.result(timeout=TIMEOUT) == "kept"
    assert future.attempts == 1
    assert len(path.read_text().split()) == 1


def test_events_arrive_in_order_with_the_name_and_pid() -> None:
    events = Recorder()
    kinds: tuple[taskpool.EventKind, ...] = (
        "job_submitted",
        "job_started",
        "job_succeeded",
        "worker_started",
        "worker_exited",
    )
    future = spawn.options(name="adder", on=events.handlers(*kinds))(jobs.add, 3, 4)
    assert future.result(timeout=TIMEOUT) == 7
    assert future.name == "adder"
    assert events.wait(
        "worker_exited"
    )  # comes after the future is done: the child exits after its job
    assert [e.kind for e in events.events] == [
        "job_submitted",
        "worker_started",
        "job_started",
        "job_succeeded",
        "worker_exited",
    ]
    by_kind = {e.kind: e for e in events.events}
    assert by_kind["job_succeeded"].result == 7
    assert by_kind["job_succeeded"].name == "adder"
    assert by_kind["worker_exited"].exitcode == 0
    assert by_kind["job_started"].pid == by_kind["worker_exited"].pid != os.getpid()


def test_a_raising_handler_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    future = spawn.options(on={"job_succeeded": broken})(jobs.add, 1, 2)
    assert future.result(timeout=TIMEOUT) == 3
    assert any(
        "job_succeeded" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )


def test_a_dropped_future_still_runs_and_cleans_up() -> None:
    events = Recorder()
    spawn.options(on=events.handlers("job_succeeded", "worker_exited"))(jobs.add, 5, 6)
    gc.collect()  # nothing of ours holds the future or its pool: the spawn must keep itself alive
    assert events.wait("worker_exited")
    assert [e.result for e in events.events if e.kind == "job_succeeded"] == [11]


# -- threads, logs and prints --------------------------------------------------------------------------


def test_threads_in_the_child(capsys: pytest.CaptureFixture[str]) -> None:
    future = spawn(jobs.squares_in_threads, 4)
    assert future.result(timeout=TIMEOUT) == [(0, 0), (1, 1), (2, 4), (3, 9)]
    out = capsys.readouterr().out
    assert sorted(line for line in out.splitlines() if line.startswith("thread")) == [
        f"thread {i} ran" for i in range(4)
    ]


def test_logs_and_prints_reach_the_parent(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tests.spawn")
    future = spawn.options(name="chatty")(jobs.print_and_log, "hello")
    child = future.result(timeout=TIMEOUT)
    # The child's lines and records are handled on the event thread before the future completes.
    captured = capsys.readouterr()
    assert "hello on stdout\n" in captured.out
    assert "hello on stderr\n" in captured.err
    records = [r for r in caplog.records if r.name == "tests.spawn"]
    assert [r.getMessage() for r in records] == ["hello logged"]
    assert records[0].process == child != os.getpid()
    assert getattr(records[0], "job_name", None) == "chatty"


# -- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "call"),
    [
        ("arguments", lambda: spawn(jobs.add, Unpicklable(), 1)),  # type: ignore[arg-type]
        (
            "arguments",
            lambda: spawn(
                jobs.options_as_keywords,
                timeout=Unpicklable(),
                start_method=1,
                name=1,
                retry=1,
                on=1,
            ),
        ),
        ("function", lambda: spawn(_unpicklable_function())),
    ],
)
def test_unpicklable_input_raises_at_once_and_starts_nothing(part: str, call: Any) -> None:
    children, threads = _child_pids(), _taskpool_threads()
    with pytest.raises(SerializationError) as info:
        call()
    assert (info.value.part, info.value.stage, info.value.where) == (part, "pickle", "parent")
    assert _child_pids() == children
    assert _taskpool_threads() == threads


def _unpicklable_function() -> Any:
    lock = threading.Lock()
    return lambda: lock.locked()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"timeout": 0}, ValueError, "positive number of seconds"),
        ({"timeout": "1"}, TypeError, "number of seconds"),
        ({"start_method": "teleport"}, ValueError, "choose one of"),
        ({"name": 1}, TypeError, "name must be a string"),
        ({"retry": 3}, TypeError, r"taskpool\.Retry"),
        ({"on": {"job_exploded": print}}, ValueError, "the kinds are"),
        ({"on": {"job_failed": 1}}, TypeError, "must be callable"),
        ({"on": [("job_failed", print)]}, TypeError, "mapping of event kind"),
    ],
)
def test_bad_options_are_refused_when_given(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        spawn.options(**options)


def test_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        spawn(42)  # type: ignore[arg-type]


def test_options_chain_and_keep_earlier_ones() -> None:
    spawner = spawn.options(name="first", timeout=5.0).options(timeout=None)
    assert "name='first'" in repr(spawner)
    assert "timeout" not in repr(spawner)
    assert repr(spawn) == "<taskpool.spawn>"
    future = spawner(jobs.add, 1, 2)
    assert future.result(timeout=TIMEOUT) == 3
    assert future.name == "first"


# -- typing (checked by mypy over the tests; never run) ---------------------------------------------------

if TYPE_CHECKING:
    assert_type(spawn(jobs.add, 1, 2), JobFuture[int])
    assert_type(spawn.options(timeout=1.0), Spawner)
    assert_type(spawn.options(name="x")(jobs.getpid), JobFuture[int])
    spawn(jobs.add, "one", 2)  # type: ignore[arg-type]
    spawn(jobs.add, 1)  # type: ignore[call-arg]
    spawn.options(colour="red")  # type: ignore[call-arg]
