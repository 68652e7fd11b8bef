"""Memory a pool holds: no more of it, and for no longer, than the work needs (under every start method).

Peak memory is measured in a fresh interpreter (`resource.getrusage` ``ru_maxrss``), so that what other tests
allocated does not count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 90.0
MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]

_PEAK_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from taskpool import TaskPool
    from tests import _memory_jobs as mj

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    if __name__ == "__main__":
        method, size = sys.argv[1], int(sys.argv[2])
        with TaskPool(1, start_method=method) as pool:
            assert pool.submit(mj.length, b"warm up the pipes and the worker").result(timeout=60) == 32
            before = peak()
            value = pool.submit(mj.make_bytes, size).result(timeout=60)
            after = peak()
            assert type(value) is bytes and len(value) == size
        print(after - before)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
def test_a_large_bytes_result_costs_at_most_its_size_in_parent_memory(
    start_method: str, tmp_path: Path
) -> None:
    size = 400 * MIB
    script = tmp_path / "peak.py"
    script.write_text(_PEAK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), start_method, str(size)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
    )
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout.strip())
    # One copy (the result itself) and a little: 400 MiB, read into a bytearray and copied, grew it by 800.
    assert grown <= 1.2 * size + 32 * MIB, f"the parent grew by {grown / MIB:.0f} MiB for 400 MiB"
