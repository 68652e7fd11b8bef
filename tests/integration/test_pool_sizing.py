"""The default pool size follows the CPUs this process may use, not the machine's count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 60

ONE_CPU = textwrap.dedent(
    """
    import os

    from taskpool import Pool, TaskPool

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    pool = TaskPool()
    print(pool.workers)
    pool.terminate()
    stdlib_like = Pool()
    print(stdlib_like._processes)
    stdlib_like.terminate()
    """
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_cpu_gets_one_worker_by_default() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ONE_CPU],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]
