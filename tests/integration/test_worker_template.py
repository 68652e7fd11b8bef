"""Workers under the default start method are forked from a template process: one import, many workers.

The template imports the worker's modules and the pool's ``preload`` modules once and forks every worker,
the first ones and each replacement; it is shared by the pools of a process, leaves multiprocessing's own
forkserver alone, and never outlives the process that started it, however that process ends.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from taskpool import TaskPool, WorkerCrashedError

from .. import _template_jobs as tj
from .. import jobs
from .test_orphans import GONE_BOUND, alive, wait_gone

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests._preload_probe"


def _template_of(pool: TaskPool) -> psutil.Process:
    """The template that forked ``pool``'s worker: the parent of the process that runs a job."""
    _, ppid, _ = pool.submit(tj.parent_and_modules).result(timeout=TIMEOUT)
    return psutil.Process(ppid)


def test_pools_of_a_process_share_one_template_that_is_not_multiprocessings_forkserver() -> None:
    with TaskPool(1) as first, TaskPool(1) as second:
        template = _template_of(first)
        assert _template_of(second).pid == template.pid
    assert template.ppid() == os.getpid()
    assert "taskpool._backends.process.template" in " ".join(template.cmdline())
    assert alive(template)  # kept for the next pool of this process


def test_a_preload_module_is_imported_once_in_the_template_and_never_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "imports"
    # A preload list of its own starts a template of its own, with this environment.
    monkeypatch.setenv("TASKPOOL_TEST_PRELOAD_LOG", str(log))
    with TaskPool(1, preload=[PROBE], max_tasks_per_worker=1) as pool:
        first = pool.submit(tj.parent_and_modules, PROBE).result(timeout=TIMEOUT)
        crashed = pool.submit(jobs.exit_worker, 3)
        with pytest.raises(WorkerCrashedError):
            crashed.result(timeout=TIMEOUT)
        outcomes = [first, *pool.map(tj.parent_and_modules, [PROBE] * 3, chunksize=1)]
    workers = {pid for pid, _, _ in outcomes}
    templates = {ppid for _, ppid, _ in outcomes}
    assert len(workers) == 4  # a new worker for each job, and after the crash
    assert len(templates) == 1
    assert all(imported == [PROBE] for _, _, imported in outcomes)
    assert log.read_text().split() == [str(templates.pop())]  # imported by the template, once


@pytest.mark.parametrize("method", [None, "spawn"])
def test_a_worker_forked_from_the_template_starts_with_its_objects_frozen(
    method: str | None,
) -> None:
    """The template freezes what it imported before it forks: a worker's collections leave those objects
    (and the memory pages it shares with the template) alone. A spawned worker has nothing frozen."""
    with TaskPool(1, start_method=method) as pool:
        frozen, collecting = pool.submit(tj.frozen_objects).result(timeout=TIMEOUT)
    assert frozen > 1000 if method is None else frozen == 0
    assert collecting  # the template imports with the collector off; a worker runs with it on


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_preload_modules_are_imported_in_each_worker_under_fork_and_spawn(method: str) -> None:
    with TaskPool(1, start_method=method, preload=["tests._preload_probe"]) as pool:
        _, ppid, imported = pool.submit(tj.parent_and_modules, PROBE).result(timeout=TIMEOUT)
    assert imported == [PROBE]
    assert ppid == os.getpid()  # started by the pool's process, no template


@pytest.mark.parametrize("method", [None, "fork", "spawn"])
def test_a_preload_module_that_does_not_exist_fails_the_constructor(method: str | None) -> None:
    with pytest.raises(ImportError, match="no_such_module_here"):
        TaskPool(1, start_method=method, preload=["no_such_module_here"])


def test_a_preload_module_that_raises_fails_the_constructor_with_its_traceback() -> None:
    with pytest.raises(ImportError, match="ZeroDivisionError") as info:
        TaskPool(1, preload=["tests._preload_raises"])
    assert "division by zero" in str(info.value.__cause__)


def test_a_preload_that_is_not_a_list_of_module_names_is_refused() -> None:
    with pytest.raises(TypeError, match="list of module names"):
        TaskPool(1, preload="numpy")
    with pytest.raises(ValueError, match="not a module name"):
        TaskPool(1, preload=["numpy; rm -rf"])
    with pytest.raises(ValueError, match="preload applies to the process backend"):
        TaskPool(1, backend="thread", preload=["json"])


def test_multiprocessings_forkserver_is_left_alone() -> None:
    from multiprocessing import forkserver

    preload = list(forkserver._forkserver._preload_modules)  # type: ignore[attr-defined]
    with TaskPool(1, preload=["json"]) as pool:
        assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9
    assert forkserver._forkserver._preload_modules == preload  # type: ignore[attr-defined]
    with multiprocessing.get_context("forkserver").Pool(1) as mp_pool:
        assert mp_pool.apply_async(jobs.square, (4,)).get(timeout=TIMEOUT) == 16


_PARENT = textwrap.dedent(
    """
    import os, sys, threading
    from taskpool import TaskPool
    from tests import _template_jobs as tj

    def main():
        pool = TaskPool(2, preload=["json"])
        futures = [pool.submit(tj.parent_and_modules) for _ in range(2)]
        pids = {f.result(timeout=20)[:2] for f in futures}
        print(" ".join(str(pid) for pair in sorted(pids) for pid in pair), flush=True)
        if sys.argv[1] == "exit":
            sys.stdin.readline()  # the test has found the processes: now end
            return
        threading.Event().wait(600)  # until the test kills this process

    if __name__ == "__main__":
        if sys.argv[2] == "thread":  # no PR_SET_PDEATHSIG then: the lifeline alone
            t = threading.Thread(target=main)
            t.start()
            t.join()
        else:
            main()
    """
)


@pytest.mark.parametrize(("end", "where"), [("kill", "main"), ("kill", "thread"), ("exit", "main")])
def test_the_template_and_its_workers_end_with_the_process_that_started_them(
    end: str, where: str, tmp_path: Path
) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, str(script), end, where],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    started: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        pids = [int(word) for word in proc.stdout.readline().split()]
        started = [psutil.Process(pid) for pid in set(pids)]
        template = psutil.Process(pids[1])
        assert template.ppid() == proc.pid
        assert proc.stdin is not None
        if end == "kill":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            proc.stdin.write("\n")
            proc.stdin.flush()
        assert proc.wait(TIMEOUT) in (0, -signal.SIGKILL)
        wait_gone(started, GONE_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        for p in started:
            if alive(p):
                p.kill()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_a_program_that_ends_before_its_template_is_ready_ends_quietly(tmp_path: Path) -> None:
    """The template may still be importing when the program is done (a pool that ran no job): it then finds
    its socket closed, and ends without a word, as it does once ready."""
    script = tmp_path / "quick.py"
    script.write_text(
        "from taskpool import TaskPool\n"
        "if __name__ == '__main__':\n"
        "    with TaskPool(2):\n"
        "        pass\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    # stderr is read to its end of file, which the template holds too: this waits for the template's end.
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=TIMEOUT
    )
    assert done.returncode == 0
    assert done.stderr == ""


def test_a_killed_template_fails_the_jobs_its_workers_ran_as_lost_and_the_pool_goes_on() -> None:
    """Its workers' status pipes end with it: the pool cannot tell when they end, so it kills them and says
    why (not a made-up exit code); a new template forks their replacements."""
    started = threading.Event()
    with TaskPool(1) as pool:
        template = _template_of(pool)
        pool.on("job_started", lambda e: started.set())
        running = pool.submit(jobs.sleep_for, 60.0)
        assert started.wait(TIMEOUT)
        template.kill()
        with pytest.raises(
            WorkerCrashedError, match="worker template process it was forked from ended"
        ) as info:
            running.result(timeout=TIMEOUT)
        assert info.value.exitcode is None
        assert pool.submit(jobs.square, 3).result(timeout=TIMEOUT) == 9
        assert _template_of(pool).pid != template.pid
