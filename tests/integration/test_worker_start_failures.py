"""Every way starting a worker can fail is named for what failed, and a failure that may pass does not break
the pool: an initializer that raises, a main module without its ``if __name__ == "__main__":`` guard, and the
system refusing a new process for a moment (under every start method the case applies to).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from taskpool import InitializerError, PoolState, TaskPool, WorkerStartError
from taskpool._backends.process.startup import SPAWN_ATTEMPTS

from .. import _failure_jobs as fj
from .. import jobs

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]


def test_an_initializer_that_raises_is_an_initializer_error_naming_it(start_method: str) -> None:
    pool = TaskPool(2, start_method=start_method, initializer=fj.initializer_raises)
    try:
        with pytest.raises(InitializerError) as info:
            pool.submit(jobs.square, 2).result(timeout=TIMEOUT)
        assert not isinstance(info.value, WorkerStartError)
        assert info.value.initializer == "initializer_raises"
        assert "initializer initializer_raises failed" in str(info.value)
        assert "the database is unreachable" in str(info.value)
    finally:
        pool.terminate()


_NO_GUARD = textwrap.dedent(
    """
    import sys
    from taskpool import TaskPool

    pool = TaskPool(2, start_method=sys.argv[1])
    print(pool.map(abs, [-1, -2, 3]))
    """
)


@pytest.mark.parametrize(
    "method", [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]
)
def test_a_main_module_without_its_guard_gets_one_clear_error(method: str, tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(_NO_GUARD)
    done = subprocess.run(
        [sys.executable, str(script), method],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode != 0
    assert done.stderr.count("Traceback") <= 1, done.stderr
    assert "WorkerStartError" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    assert "initializer" not in done.stderr


class _FailingStarts:
    """Makes the next ``failures`` process starts of a context raise ``OSError(EMFILE)`` (any thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start_method: str) -> None:
        self.failures = 0
        self.raised = 0
        self._lock = threading.Lock()
        process_class: Any = multiprocessing.get_context(start_method).Process  # type: ignore[attr-defined]
        original = process_class.start

        def start(process: Any) -> None:
            with self._lock:
                fail = self.failures > 0
                if fail:
                    self.failures -= 1
                    self.raised += 1
            if fail:
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            original(process)

        monkeypatch.setattr(process_class, "start", start)


def test_a_momentary_emfile_while_replacing_workers_is_retried(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = _FailingStarts(monkeypatch, start_method)
    with TaskPool(2, start_method=start_method, max_tasks_per_worker=1) as pool:
        assert pool.submit(jobs.square, 2).result(timeout=TIMEOUT) == 4
        starts.failures = 2  # the next two workers fail to start
        assert pool.map(jobs.square, range(6), chunksize=1) == [x * x for x in range(6)]
        assert starts.raised == 2
        assert pool.state is PoolState.RUNNING


def test_repeated_start_failures_break_the_pool_saying_what_failed(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = _FailingStarts(monkeypatch, start_method)
    starts.failures = 10**6
    t0 = time.monotonic()
    pool = TaskPool(2, start_method=start_method)
    try:
        with pytest.raises(WorkerStartError) as info:
            pool.submit(jobs.square, 2).result(timeout=TIMEOUT)
        message = str(info.value)
        assert f"failed {SPAWN_ATTEMPTS} times in a row" in message
        assert "Too many open files" in message
        assert "initializer" not in message
        assert pool.state is PoolState.BROKEN
    finally:
        pool.terminate()
    assert time.monotonic() - t0 < 10.0
