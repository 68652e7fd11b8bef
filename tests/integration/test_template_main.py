"""The worker template imports the program's main module once, as multiprocessing's forkserver does.

Workers forked from it find the main module imported, so neither the first workers nor a replacement after a
crash run it again; a main module run by path or by name (``python -m``) alike, with the program's
``sys.argv``. A main module that fails there is left to the workers, which import it themselves as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]

# The program: each import of its main module logs the importing process's pid, its name and sys.argv; the
# guarded part runs jobs on 2 workers, crashes one, runs jobs on its replacement, and prints which
# processes ran them. ``fail_in_copies`` makes every import but the program's own raise.
_PROGRAM = textwrap.dedent(
    """
    import os, sys
    from taskpool import TaskPool, WorkerCrashedError

    with open(os.environ["MAIN_LOG"], "a") as log:
        log.write(f"{os.getpid()} {__name__} {' '.join(sys.argv[1:])}\\n")
    if __name__ != "__main__" and "fail_in_copies" in sys.argv:
        raise RuntimeError("this main module imports only as __main__")


    def pid(_):
        return os.getpid()


    def die():
        os._exit(3)


    if __name__ == "__main__":
        with TaskPool(2) as pool:
            pids = set(pool.map(pid, range(8), chunksize=1))
            try:
                pool.submit(die).result(timeout=30)
            except WorkerCrashedError:
                pass
            pids |= set(pool.map(pid, range(8), chunksize=1))
        print(" ".join(str(p) for p in sorted(pids)), flush=True)
    """
)


def _run(
    tmp_path: Path, how: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Run the program by path or as a module; return how it ended, and the log's lines."""
    package = tmp_path / "tmpl_main_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "prog.py").write_text(_PROGRAM)
    log = tmp_path / "imports.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)]),
        "MAIN_LOG": str(log),
    }
    target = ["-m", "tmpl_main_pkg.prog"] if how == "name" else [str(package / "prog.py")]
    done = subprocess.run(
        [sys.executable, *target, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    return done, [line.split() for line in log.read_text().splitlines()]


@pytest.mark.parametrize("how", ["path", "name"])
def test_the_main_module_is_imported_once_in_the_template_and_never_in_a_worker(
    tmp_path: Path, how: str
) -> None:
    done, imports = _run(tmp_path, how, "first", "second")
    assert done.returncode == 0, done.stderr
    workers = [int(word) for word in done.stdout.split()]
    assert len(workers) >= 3  # two workers, and the crashed one's replacement
    importers = [int(line[0]) for line in imports]
    assert len(importers) == 2, imports  # the program itself, and the template
    assert not set(importers) & set(workers)
    assert imports[0][1] == "__main__"
    assert imports[1][1] == "__mp_main__"
    assert imports[1][2:] == ["first", "second"]  # with the program's sys.argv


def test_a_main_module_that_fails_in_the_template_fails_the_pool_as_it_did_before(
    tmp_path: Path,
) -> None:
    """It raises as ``__mp_main__`` wherever it is imported: the template leaves it out and serves forks all
    the same, each worker tries it itself and ends before it is ready, and the pool says so once."""
    done, imports = _run(tmp_path, "path", "fail_in_copies")
    assert done.returncode != 0
    assert "WorkerStartError" in done.stderr or "InitializerError" in done.stderr, done.stderr
    copies = [line for line in imports if line[1] == "__mp_main__"]
    assert len({line[0] for line in copies}) >= 2  # the template, and at least one worker after it


# A main module that is slow to import anywhere but as the program: it says so in a file, then sleeps.
_SLOW_MAIN = textwrap.dedent(
    """
    import os, sys, time
    from taskpool import TaskPool
    from taskpool._backends.process import templates

    if __name__ != "__main__":
        open(os.environ["SLOW_MARK"], "w").close()
        time.sleep(float(os.environ["SLOW_FOR"]))

    if __name__ == "__main__":
        if sys.argv[1] == "short-deadline":
            templates.READY_TIMEOUT = 1.0  # for the worker's modules; the main module has no deadline
            with TaskPool(1) as pool:
                print(pool.submit(abs, -7).result(timeout=60), flush=True)
        else:
            pool = TaskPool(1)
            pool.submit(abs, -7)
            deadline = time.monotonic() + 30
            while not os.path.exists(os.environ["SLOW_MARK"]):  # another process's file: no event to wait on
                assert time.monotonic() < deadline
                time.sleep(0.01)
            began = time.monotonic()
            pool.terminate()
            print(f"{time.monotonic() - began:.3f}", flush=True)
    """
)


def _run_slow(tmp_path: Path, mode: str, slow_for: float) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "slow_main.py"
    script.write_text(_SLOW_MAIN)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SLOW_MARK": str(tmp_path / "importing"),
        "SLOW_FOR": str(slow_for),
    }
    return subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def test_a_main_module_slower_to_import_than_the_templates_deadline_still_gets_its_workers(
    tmp_path: Path,
) -> None:
    done = _run_slow(tmp_path, "short-deadline", 2.5)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7"]


def test_terminating_a_pool_does_not_wait_for_its_template_to_import_the_main_module(
    tmp_path: Path,
) -> None:
    # The template, still importing, is killed at the program's exit: the run is short all the same.
    done = _run_slow(tmp_path, "terminate", 25.0)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 5.0  # not the 25 s the import takes
