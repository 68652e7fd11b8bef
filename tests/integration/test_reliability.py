"""Faults that must cost one job at most, under every start method."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskpool import SerializationError, TaskPool
from tests import jobs

TIMEOUT = 30.0


def test_an_open_file_as_a_result_fails_with_serialization_error_not_a_stringio(
    pool: TaskPool, tmp_path: Path
) -> None:
    path = tmp_path / "data.txt"
    path.write_text("contents\n")
    with pytest.raises(SerializationError) as info:
        pool.submit(jobs.return_open_file, str(path)).result(timeout=TIMEOUT)
    assert info.value.part == "result"
    assert "open file" in str(info.value)
    assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9


def test_lambdas_and_closures_still_travel_by_value(pool: TaskPool) -> None:
    offset = 10
    assert pool.submit(lambda x: x + offset, 1).result(timeout=TIMEOUT) == 11
    assert pool.map(lambda x: x * offset, range(3)) == [0, 10, 20]


def test_a_process_pool_inside_a_worker_is_refused_at_once_and_leaks_nothing(
    pool: TaskPool,
) -> None:
    outcome = pool.submit(jobs.make_process_pool).result(timeout=TIMEOUT)
    assert outcome.startswith("TaskpoolError: a process pool cannot start inside a worker process")
    assert "backend='thread'" in outcome
    assert outcome.endswith("threads +0")


def test_a_thread_pool_inside_a_job_keeps_working(pool: TaskPool) -> None:
    assert pool.submit(jobs.use_thread_pool_inside, 4).result(timeout=TIMEOUT) == [0, 1, 4, 9]


# -- os.fork() in user code -------------------------------------------------------------------------------

_FORK_SCRIPT = """
import json, os, sys, time
from taskpool import ForkedPoolError, TaskPool
from tests import jobs

def attempt(call):
    try:
        call()
    except ForkedPoolError as exc:
        return exc.owner
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"

if __name__ == "__main__":
    pool = TaskPool(2, start_method=sys.argv[1])
    shared = pool.shared.dict()
    shared["n"] = 1
    assert pool.submit(jobs.square, 3).result(timeout=30) == 9
    running = pool.submit(jobs.sleep_for, 1.0)  # must not be hit by anything the child does
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        seen = {
            "submit": attempt(lambda: pool.submit(jobs.square, 2)),
            "map": attempt(lambda: pool.map(jobs.square, [1])),
            "shared proxy": attempt(lambda: shared["n"]),
            "new shared object": attempt(lambda: pool.shared.list()),
            "close": attempt(pool.close),
            "terminate": attempt(pool.terminate),
        }
        os.write(w, json.dumps(seen).encode())
        os.close(w)
        sys.exit(0)  # a normal exit: atexit hooks and multiprocessing's exit handler run
    os.close(w)
    with os.fdopen(r) as pipe:
        seen = json.load(pipe)
    t0 = time.monotonic()
    os.waitpid(pid, 0)
    exit_seconds = time.monotonic() - t0
    report = {
        "owner": os.getpid(),
        "child": seen,
        "exit_seconds": exit_seconds,
        "running": running.result(timeout=30),
        "after": pool.submit(jobs.square, 4).result(timeout=30),
        "shared": shared["n"],
    }
    pool.close()
    pool.join(30)
    print(json.dumps(report))
"""


def test_a_forked_child_cannot_use_the_parents_pool_and_its_exit_touches_nothing(
    start_method: str, tmp_path: Path
) -> None:
    script = tmp_path / "fork_in_user_code.py"
    script.write_text(_FORK_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), start_method],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=root,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    owner = report["owner"]
    assert report["child"] == {
        "submit": owner,
        "map": owner,
        "shared proxy": owner,
        "new shared object": owner,
        "close": owner,
        "terminate": owner,
    }
    assert report["exit_seconds"] < 2.0  # immediate: it used to wait 10 s for the parent's threads
    assert report["running"] == 1.0  # the parent's running job was not killed by the child's exit
    assert report["after"] == 16
    assert report["shared"] == 1  # the child did not stop the parent's shared-state server


def test_spawn_and_task_submit_inside_a_job_are_refused_and_leak_nothing(pool: TaskPool) -> None:
    for _ in range(3):  # repeated tries leak no threads either
        outcome = pool.submit(jobs.spawn_and_submit_inside).result(timeout=TIMEOUT)
        assert outcome == "['TaskpoolError', 'TaskpoolError'] threads +0"
