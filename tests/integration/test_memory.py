"""Memory a pool holds: no more of it, and for no longer, than the work needs (under every start method).

Peak memory is measured in a fresh interpreter (`resource.getrusage` ``ru_maxrss``), so that what other tests
allocated does not count.
"""

from __future__ import annotations

import functools
import gc
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

from taskpool import TaskPool
from taskpool._backends.process.functions import FUNCTION_CACHE_SIZE

from .. import _memory_jobs as mj
from .. import jobs
from .._scripts import run_script

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
    out = run_script(tmp_path / "peak.py", _PEAK_SCRIPT, start_method, str(size), timeout=TIMEOUT)
    grown = int(out.strip())
    # One copy (the result itself) and a little: 400 MiB, read into a bytearray and copied, grew it by 800.
    assert grown <= 1.2 * size + 32 * MIB, f"the parent grew by {grown / MIB:.0f} MiB for 400 MiB"


# -- the function cache and what a worker keeps ----------------------------------------------------------
def _settle(pool: TaskPool) -> None:
    """Wait until the event thread has finished with every job before this one (it handles them in order)."""
    assert pool.submit(jobs.noop).result(timeout=TIMEOUT) is None


def test_a_bound_methods_object_is_freed_once_its_jobs_are_done(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        holder = mj.Holder(3)
        freed = weakref.ref(holder)
        assert pool.map(holder.scale, range(4)) == [0, 3, 6, 9]
        assert pool.submit(holder.scale, 5).result(timeout=TIMEOUT) == 15
        _settle(pool)
        del holder
        gc.collect()
        assert freed() is None, "the pool keeps the object of a bound method alive"


def test_partials_leave_nothing_behind_once_their_jobs_are_done(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        holders = [mj.Holder(i) for i in range(100)]
        refs = [weakref.ref(h) for h in holders]
        futures = [pool.submit(functools.partial(mj.scale, h), 2) for h in holders]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [2 * i for i in range(100)]
        _settle(pool)
        del holders, futures
        gc.collect()
        assert [r for r in refs if r() is not None] == []


def test_a_worker_holds_a_bounded_number_of_functions(start_method: str) -> None:
    with TaskPool(1, start_method=start_method) as pool:
        functions = [mj.Counted(i) for i in range(FUNCTION_CACHE_SIZE + 20)]
        for fn in functions:  # one at a time: one worker, each function sent to it once
            assert pool.submit(fn).result(timeout=TIMEOUT) == fn.tag
        assert 0 < pool.submit(mj.live_counted).result(timeout=TIMEOUT) <= FUNCTION_CACHE_SIZE


def test_a_worker_forgets_the_functions_the_parent_freed(start_method: str) -> None:
    with TaskPool(1, start_method=start_method) as pool:
        functions = [mj.Counted(i) for i in range(10)]
        assert [f.result(timeout=TIMEOUT) for f in [pool.submit(fn) for fn in functions]] == list(
            range(10)
        )
        _settle(pool)
        assert pool.submit(mj.live_counted).result(timeout=TIMEOUT) == 10
        del functions
        gc.collect()
        assert pool.submit(mj.live_counted).result(timeout=TIMEOUT) == 0


def test_a_worker_holds_nothing_of_a_finished_job(start_method: str) -> None:
    with TaskPool(1, start_method=start_method) as pool:
        argument_freed, result_freed = pool.shared.event(), pool.shared.event()
        argument = mj.Finalized(argument_freed)
        result = pool.submit(mj.finalized_result, argument, result_freed).result(timeout=TIMEOUT)
        # No other job follows: the worker must have let go of both when the job ended.
        assert argument_freed.wait(TIMEOUT), "the worker still holds the job's argument"
        assert result_freed.wait(TIMEOUT), "the worker still holds the job's result"
        del argument, result
