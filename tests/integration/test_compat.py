"""`taskpool.Pool`, beyond what CPython's own Pool cases check (those run in test_stdlib_pool.py).

Where the stdlib hangs (a dead worker, a callback that raises, a result of a terminated pool), taskpool.Pool
must not; where it mirrors the stdlib (exceptions, callbacks, results), it must do so exactly.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import multiprocessing.pool
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from typing_extensions import assert_type

from taskpool import (
    AsyncResult,
    IMapIterator,
    InitializerError,
    MapResult,
    Pool,
    PoolClosedError,
    WorkerCrashedError,
)
from tests import jobs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Generous bounds for blocking calls: a test fails on them only when something hangs.
TIMEOUT = 30.0

# The stdlib's exception classes, which typeshed does not declare.
MaybeEncodingError: Any = getattr(multiprocessing.pool, "MaybeEncodingError")  # noqa: B009
StdlibRemoteTraceback: Any = getattr(multiprocessing.pool, "RemoteTraceback")  # noqa: B009


def _raise(_: object) -> None:
    """A callback that raises (runs on the pool's event thread)."""
    raise RuntimeError("a callback that raises")


@pytest.fixture
def pool() -> Iterator[Pool]:
    """A two-worker Pool under the default start method; terminated if the test left it open."""
    p = Pool(2)
    try:
        yield p
    finally:
        p.terminate()
        p.join()


# -- construction ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("processes", [0, -1])
def test_processes_below_one_is_a_value_error(processes: int) -> None:
    with pytest.raises(ValueError, match="Number of processes must be at least 1"):
        Pool(processes)


def test_processes_none_is_the_cpu_count() -> None:
    p = Pool()
    try:
        assert f"pool_size={os.cpu_count()}" in repr(p)
    finally:
        p.terminate()
        p.join()


@pytest.mark.parametrize("value", [0, -1, 0.5, "12", True])
def test_invalid_maxtasksperchild_is_a_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="maxtasksperchild must be a positive int or None"):
        Pool(1, maxtasksperchild=value)


def test_uncallable_initializer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="initializer must be a callable"):
        Pool(1, initializer=3)  # type: ignore[arg-type]


def test_context_chooses_the_start_method(start_method: str) -> None:
    p = Pool(1, context=multiprocessing.get_context(start_method))
    try:
        assert p._core.start_method == start_method
        assert p.apply(jobs.square, (4,)) == 16
    finally:
        p.close()
        p.join()


def test_a_pool_does_not_pickle(pool: Pool) -> None:
    with pytest.raises(
        NotImplementedError, match="pool objects cannot be passed between processes"
    ):
        pickle.dumps(pool)


# -- lifecycle ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stop", ["close", "terminate"])
def test_use_after_close_or_terminate_is_pool_not_running(stop: str) -> None:
    p = Pool(1)
    getattr(p, stop)()
    p.join()
    calls: list[Callable[[], object]] = [
        lambda: p.apply(jobs.square, (1,)),
        lambda: p.apply_async(jobs.square, (1,)),
        lambda: p.map(jobs.square, [1]),
        lambda: p.map_async(jobs.square, [1]),
        lambda: p.starmap(jobs.add, [(1, 2)]),
        lambda: p.starmap_async(jobs.add, [(1, 2)]),
        lambda: p.imap(jobs.square, [1]),
        lambda: p.imap_unordered(jobs.square, [1]),
        lambda: p.__enter__(),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"^Pool not running$") as info:
            call()
        assert isinstance(info.value, PoolClosedError)


def test_join_before_close_is_a_value_error(pool: Pool) -> None:
    with pytest.raises(ValueError, match="Pool is still running"):
        pool.join()


def test_close_then_join_lets_jobs_finish() -> None:
    p = Pool(2)
    results = [p.apply_async(jobs.sleep_for, (0.05,)) for _ in range(4)]
    p.close()
    p.join()
    assert [r.get(timeout=0) for r in results] == [0.05] * 4


def test_exit_terminates_and_pending_results_raise_instead_of_hanging() -> None:
    with Pool(1) as p:
        running = p.apply_async(jobs.sleep_for, (60.0,))
        mapped = p.map_async(jobs.sleep_for, [60.0, 60.0])
    # The stdlib's get() would block forever here; taskpool's says the pool was terminated.
    t0 = time.monotonic()
    with pytest.raises(cf.CancelledError):
        running.get(timeout=TIMEOUT)
    with pytest.raises(cf.CancelledError):
        mapped.get(timeout=TIMEOUT)
    assert time.monotonic() - t0 < TIMEOUT
    assert running.ready()
    assert not running.successful()
    p.join()


# -- results ---------------------------------------------------------------------------------------------
def test_get_timeout_is_multiprocessing_timeout_error(pool: Pool) -> None:
    result = pool.apply_async(jobs.sleep_for, (60.0,))
    with pytest.raises(ValueError, match="not ready"):
        result.successful()
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.05)
    result.wait(0.05)
    assert not result.ready()
    it = pool.imap(jobs.sleep_for, [60.0])
    with pytest.raises(multiprocessing.TimeoutError):
        it.next(timeout=0.05)


def test_apply_async_callback_runs_once_in_the_parent_before_get_returns(pool: Pool) -> None:
    seen: list[tuple[int, int, str]] = []

    def callback(value: int) -> None:
        seen.append((value, os.getpid(), threading.current_thread().name))

    result = pool.apply_async(jobs.square, (7,), callback=callback, error_callback=_raise)
    assert result.get(timeout=TIMEOUT) == 49
    assert result.successful()
    assert len(seen) == 1
    value, pid, thread = seen[0]
    assert (value, pid) == (49, os.getpid())
    assert thread != threading.main_thread().name


def test_error_callback_gets_the_exception_that_get_raises(pool: Pool) -> None:
    errors: list[BaseException] = []
    result = pool.apply_async(
        jobs.raise_value_error, (5,), callback=_raise, error_callback=errors.append
    )
    with pytest.raises(ValueError, match="bad value") as info:
        result.get(timeout=TIMEOUT)
    assert errors == [info.value]
    assert type(info.value.__cause__) is StdlibRemoteTraceback
    assert "raise ValueError" in str(info.value.__cause__)
    assert not result.successful()


def test_map_async_callback_gets_the_whole_list_once(pool: Pool) -> None:
    calls: list[list[int]] = []
    result = pool.map_async(jobs.square, range(20), chunksize=3, callback=calls.append)
    assert result.get(timeout=TIMEOUT) == [x * x for x in range(20)]
    assert calls == [[x * x for x in range(20)]]


def test_map_async_error_callback_gets_the_first_exception_once(pool: Pool) -> None:
    errors: list[BaseException] = []
    result = pool.map_async(
        jobs.raise_if_negative, [1, -1, 2, -2], chunksize=1, error_callback=errors.append
    )
    with pytest.raises(ValueError, match=r"^-[12]$") as info:
        result.get(timeout=TIMEOUT)
    assert errors == [info.value]
    assert info.value.args in {(-1,), (-2,)}
    assert not result.successful()


def test_map_async_of_nothing_is_ready_at_once_and_calls_back(pool: Pool) -> None:
    calls: list[list[int]] = []
    result = pool.map_async(jobs.square, [], callback=calls.append)
    assert result.ready()
    assert result.get(timeout=0) == []
    assert calls == [[]]


def test_starmap_and_imap_unordered(pool: Pool) -> None:
    assert pool.starmap(jobs.add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.starmap_async(jobs.add, [(5, 6)]).get(timeout=TIMEOUT) == [11]
    assert sorted(pool.imap_unordered(jobs.square, range(10), chunksize=3)) == [
        x * x for x in range(10)
    ]


def test_bad_chunksize_is_a_value_error(pool: Pool) -> None:
    for chunksize in (0, -1):
        with pytest.raises(ValueError, match="hunksize"):
            pool.map(jobs.square, [1], chunksize=chunksize)
        with pytest.raises(ValueError, match="hunksize"):
            pool.imap(jobs.square, [1], chunksize=chunksize)


def test_imap_raises_the_jobs_exception_with_the_stdlib_traceback(pool: Pool) -> None:
    it = pool.imap(jobs.raise_if_negative, [1, -3])
    assert next(it) == 1
    with pytest.raises(ValueError, match=r"^-3$") as info:
        next(it)
    assert info.value.args == (-3,)
    assert type(info.value.__cause__) is StdlibRemoteTraceback


def test_imap_goes_on_after_a_failed_job(pool: Pool) -> None:
    # As the stdlib's: the failed job's exception is raised once, then the results after it come.
    for ordered in (True, False):
        make = pool.imap if ordered else pool.imap_unordered
        it = make(jobs.raise_if_negative, [1, -1, 2, 3])
        outcomes: list[object] = []
        for _ in range(5):
            try:
                outcomes.append(it.next(timeout=TIMEOUT))
            except StopIteration:
                break
            except ValueError as exc:
                outcomes.append(exc.args)
        if ordered:
            assert outcomes == [1, (-1,), 2, 3]
        else:
            assert sorted(map(str, outcomes)) == ["(-1,)", "1", "2", "3"]


def test_unpicklable_arguments_raise_the_picklers_error(pool: Pool) -> None:
    # As the stdlib does: the pickler's own exception, not a wrapper.
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pool.apply(jobs.identity, (jobs.Unpicklable(),))
    with pytest.raises(TypeError, match="refuses to be pickled"):
        pool.map(jobs.identity, [1, jobs.Unpicklable()])
    assert pool.apply(jobs.square, (3,)) == 9


def test_unpicklable_result_is_maybe_encoding_error(pool: Pool) -> None:
    for _ in range(5):  # the workers survive it
        errors: list[BaseException] = []
        result = pool.apply_async(jobs.return_unpicklable, error_callback=errors.append)
        with pytest.raises(MaybeEncodingError) as info:
            result.get(timeout=TIMEOUT)
        assert errors == [info.value]
        assert "refuses to be pickled" in info.value.exc
        assert info.value.value
    with pytest.raises(MaybeEncodingError):
        pool.starmap(jobs.return_unpicklable, [(), ()])
    assert pool.apply(jobs.square, (3,)) == 9


# -- what the stdlib gets wrong ---------------------------------------------------------------------------
def test_a_dead_worker_fails_its_job_instead_of_hanging_map(start_method: str) -> None:
    p = Pool(2, context=multiprocessing.get_context(start_method))
    try:
        with pytest.raises(WorkerCrashedError) as info:
            p.map_async(jobs.exit_worker, [7], chunksize=1).get(timeout=TIMEOUT)
        assert info.value.exitcode == 7
        errors: list[BaseException] = []
        result = p.apply_async(jobs.kill_self, error_callback=errors.append)
        with pytest.raises(WorkerCrashedError):
            result.get(timeout=TIMEOUT)
        assert len(errors) == 1
        # The pool replaced its workers and goes on.
        assert p.map(jobs.square, range(8)) == [x * x for x in range(8)]
    finally:
        p.terminate()
        p.join()


def test_a_callback_that_raises_is_logged_and_the_pool_goes_on(
    pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="taskpool"):
        assert pool.apply_async(jobs.square, (2,), callback=_raise).get(timeout=TIMEOUT) == 4
        assert pool.map_async(jobs.square, [1, 2], callback=_raise).get(timeout=TIMEOUT) == [1, 4]
        with pytest.raises(ValueError, match="bad value"):
            pool.apply_async(jobs.raise_value_error, (1,), error_callback=_raise).get(
                timeout=TIMEOUT
            )
        with pytest.raises(ValueError, match=r"^-1$"):
            pool.map_async(jobs.raise_if_negative, [-1], error_callback=_raise).get(timeout=TIMEOUT)
    raised = [
        r for r in caplog.records if r.exc_info and "a callback that raises" in str(r.exc_info[1])
    ]
    assert len(raised) == 4
    assert pool.apply(jobs.square, (5,)) == 25


def test_a_failing_initializer_is_an_error_not_a_respawn_loop() -> None:
    p = Pool(1, initializer=jobs.raise_value_error, initargs=(1,))
    try:
        with pytest.raises(InitializerError, match="bad value"):
            p.apply_async(jobs.square, (2,)).get(timeout=TIMEOUT)
    finally:
        p.terminate()
        p.join()


def test_maxtasksperchild_replaces_workers() -> None:
    p = Pool(1, maxtasksperchild=2)
    try:
        pids = [p.apply(jobs.getpid) for _ in range(6)]
    finally:
        p.close()
        p.join()
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


def test_interpreter_exit_with_open_pool(tmp_path: Any) -> None:
    # CPython's bpo-38744/bpo-39360 case, with taskpool.Pool: a pool still open (and held by a global) when
    # the interpreter exits must neither hang it nor leave a worker behind.
    script = tmp_path / "open_pool.py"
    script.write_text(
        textwrap.dedent(
            """
            from taskpool import Pool
            problem = None
            class A:
                def __init__(self):
                    self.pool = Pool(processes=1)
            def test():
                global problem
                problem = A()
                problem.pool.map(float, tuple(range(10)))
            if __name__ == "__main__":
                test()
                print(problem.pool.map(float, [1]))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1.0]"
    assert not done.stderr


# -- static types (mypy --strict checks these; running them checks the values) ---------------------------
def test_static_types(pool: Pool) -> None:
    applied = pool.apply_async(jobs.square, (1,))
    assert_type(applied, AsyncResult[int])
    assert_type(applied.get(timeout=TIMEOUT), int)
    assert_type(pool.apply(jobs.add, (1, 2)), int)
    mapped = pool.map_async(jobs.square, [1, 2])
    assert_type(mapped, MapResult[int])
    assert_type(mapped.get(timeout=TIMEOUT), list[int])
    assert_type(pool.map(jobs.square, [3]), list[int])
    assert_type(pool.starmap(jobs.add, [(1, 2)]), list[int])
    assert_type(pool.imap(jobs.square, [4]), IMapIterator[int])
    assert_type(list(pool.imap_unordered(jobs.square, [5])), list[int])
    assert isinstance(mapped, AsyncResult)
    assert applied.get(timeout=TIMEOUT) == 1
