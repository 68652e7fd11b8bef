"""`@task`: local calls, submit/map/options on the innermost active pool or the default pool, and pickling."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

import taskpool
from taskpool import Task, TaskPool, task
from taskpool._pool.active import active_stack
from taskpool._task import shutdown_default_pool

from .._task_jobs import Holder, double, fail_until, flaky_add, task_pid

TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


def test_a_task_called_directly_runs_here() -> None:
    assert double(21) == 42
    assert task_pid() == os.getpid()
    assert isinstance(double, Task)
    assert double.__wrapped__(2) == 4
    assert double.__name__ == "double"
    assert double.__module__ == "tests._task_jobs"


def test_submit_and_map_run_on_the_active_pool(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        future = double.submit(5)
        assert future.result(TIMEOUT) == 10
        assert future.name == "double"
        assert task_pid.submit().result(TIMEOUT) != os.getpid()
        assert double.map(range(10)) == [2 * i for i in range(10)]
        assert double.map([], chunksize=3) == []
        assert flaky_add.submit(1, y=2).result(TIMEOUT) == 3
        assert Holder.triple.submit(3).result(TIMEOUT) == 9
        assert (
            pool.submit(double, 4).result(TIMEOUT) == 8
        )  # a Task is an ordinary function to the pool


def test_decorator_options_reach_the_job(tmp_path: Path) -> None:
    with TaskPool(2):
        assert flaky_add.submit(1).name == "flaky-add"
        future = fail_until.submit(str(tmp_path / "m"), 3)  # Retry(attempts=3) from the decorator
        assert future.result(TIMEOUT) == 3
        assert future.attempts == 3
        with pytest.raises(ValueError, match="attempt 1"):
            fail_until.options(retry=None).submit(str(tmp_path / "n"), 3).result(TIMEOUT)


def test_options_returns_a_new_task_and_keeps_the_original() -> None:
    renamed = double.options(name="twice", timeout=5.0)
    assert isinstance(renamed, Task)
    assert renamed is not double
    assert renamed(3) == 6
    assert "name='twice'" in repr(renamed)
    assert "name=" not in repr(double)
    with TaskPool(1, backend="inline"):
        assert renamed.options(timeout=None).submit(1).name == "twice"
        assert double.submit(1).name == "double"


def test_task_options_that_the_backend_cannot_honour_fail_clearly() -> None:
    with TaskPool(1, backend="thread"), pytest.raises(ValueError, match="cannot enforce a timeout"):
        flaky_add.submit(1)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": -1}, ValueError),
        ({"timeout": "soon"}, TypeError),
        ({"retry": 3}, TypeError),
        ({"name": 5}, TypeError),
    ],
)
def test_bad_decorator_options_fail_at_the_decorator(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        task(**kwargs)  # type: ignore[call-overload]


def test_decorating_something_not_callable_fails() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        task(5)  # type: ignore[call-overload]


def test_the_innermost_pool_block_wins_and_is_left_on_exit() -> None:
    with TaskPool(1, backend="thread") as outer:
        assert task_pid.submit().result(TIMEOUT) == os.getpid()
        with TaskPool(1, backend="inline") as inner:
            seen: list[str] = []
            inner.on("job_succeeded", lambda e: seen.append("inner"))
            outer.on("job_succeeded", lambda e: seen.append("outer"))
            double.submit(1).result(TIMEOUT)
            assert seen == ["inner"]
        double.submit(1).result(TIMEOUT)
        assert seen == ["inner", "outer"]


def test_a_block_left_by_an_exception_is_popped() -> None:
    with pytest.raises(RuntimeError), TaskPool(1, backend="inline") as pool:
        raise RuntimeError("leave")
    assert pool not in active_stack()


def test_a_pool_block_does_not_redirect_other_threads() -> None:
    stacks: list[tuple[TaskPool, ...]] = []
    with TaskPool(1, backend="inline") as pool:
        thread = threading.Thread(target=lambda: stacks.append(active_stack()))
        thread.start()
        thread.join(TIMEOUT)
        assert active_stack() == (pool,)
    assert stacks == [()]


def test_outside_any_block_the_default_pool_runs_tasks() -> None:
    try:
        future = task_pid.submit()
        assert future.result(TIMEOUT) != os.getpid()
        default = taskpool._task._default_pool
        assert default is not None
        assert default.backend == "process"
        assert double.submit(2).result(TIMEOUT) == 4
        assert taskpool._task._default_pool is default  # made once, then reused
    finally:
        shutdown_default_pool()
    assert taskpool._task._default_pool is None


def test_a_closed_default_pool_is_replaced() -> None:
    try:
        first = taskpool._task.active_pool()
        first.close()
        first.join(TIMEOUT)
        assert double.submit(3).result(TIMEOUT) == 6
        assert taskpool._task._default_pool is not first
    finally:
        shutdown_default_pool()


def test_tasks_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(double)) is double
    assert pickle.loads(pickle.dumps(Holder.triple)) is Holder.triple
    assert (
        pickle.loads(pickle.dumps(double.options(name="x"))) is double
    )  # workers need only the function
    assert b"double" in pickle.dumps(double)
    assert len(pickle.dumps(double)) < 100


def test_a_task_made_inside_a_function_travels_by_value() -> None:
    def local(x: int) -> int:
        return x + 100

    local_task = task(local)
    with TaskPool(1) as pool:
        assert pool.submit(local_task, 1).result(TIMEOUT) == 101
        assert local_task.submit(2).result(TIMEOUT) == 102


SCRIPT = """
import os, sys
from taskpool import task

@task
def pid(_=None):
    return os.getpid()

if __name__ == "__main__":
    print(pid.submit().result(60), flush=True)
    print(pid.map(range(3)), flush=True)
    # exit with the default pool still running: the exit hook must stop it, without hanging
"""


def test_default_pool_in_a_main_script_stops_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    worker = int(lines[0])
    assert lines[1].startswith("[")
    assert "Traceback" not in done.stderr
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE
