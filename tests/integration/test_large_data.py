"""Large data through shared memory: exact round trips both ways, writable argument arrays, nothing left behind
by a crash, a timeout or the parent's SIGKILL, the fallback to the pipe, ``pool.share`` and
``pool.shared.array``."""

from __future__ import annotations

import errno
import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskpool import JobTimeoutError, PoolClosedError, Retry, TaskPool, WorkerCrashedError
from taskpool._backends.process import segments
from taskpool._runtime import shm

from .._scripts import ROOT, SCRIPT_ENV, run_script
from . import _large_data_jobs as lj

np = pytest.importorskip("numpy")

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not segments.shm_supported(), reason="shared memory is Linux-only"),
]

TIMEOUT = 60.0
MIB = 1024 * 1024


def _memfds(pid: int | str = "self") -> int:
    count = 0
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for name in names:
        try:
            if "memfd:taskpool" in os.readlink(f"/proc/{pid}/fd/{name}"):
                count += 1
        except OSError:
            pass
    return count


def _dev_shm() -> set[str]:
    """What /dev/shm holds that could be a pool's: taskpool's name, or multiprocessing.shared_memory's prefix
    (other programs on the machine come and go there: joblib's memmaps, multiprocessing's semaphores)."""
    if not os.path.isdir("/dev/shm"):
        return set()
    return {n for n in os.listdir("/dev/shm") if "taskpool" in n or n.startswith("psm_")}


# -- exact round trips -------------------------------------------------------------------------------------

_DTYPES = ["float64", "int8", "uint16", "complex128", "bool", "datetime64[ns]", "<f4", ">i4"]
# Element counts that put 8-byte items below, at and above the shared memory threshold, and the edges.
_COUNTS = [0, 1, 1000, segments.SHM_MIN // 8 - 1, segments.SHM_MIN // 8 + 1, 3 * MIB // 8]


@st.composite
def _arrays(draw: st.DrawFn) -> Any:
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    count = draw(st.sampled_from(_COUNTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    raw = rng.integers(0, 256, count * dtype.itemsize + 64, dtype=np.uint8).tobytes()
    flat = np.frombuffer(raw, dtype=dtype, count=count).copy()
    layout = draw(st.sampled_from(["flat", "matrix", "fortran", "strided", "transposed", "0-d"]))
    if layout == "0-d":
        return flat[:1].reshape(()) if count else np.array(7, dtype=dtype)
    if layout == "flat" or count < 4:
        return flat
    rows = 4
    matrix = flat[: (count // rows) * rows].reshape(rows, -1)
    if layout == "matrix":
        return matrix
    if layout == "fortran":
        return np.asfortranarray(matrix)
    if layout == "strided":
        return matrix[:, ::3]
    return matrix.T


def _same(a: Any, b: Any) -> bool:
    return (
        type(a) is type(b)
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.tobytes() == b.tobytes()
    )


def test_arrays_round_trip_exactly_both_ways(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as pool:

        @settings(max_examples=25, deadline=None)
        @given(value=_arrays())
        def check(value: Any) -> None:
            back = pool.submit(lj.echo, value).result(timeout=TIMEOUT)
            # The oracle is pickle itself (numpy pickles a strided array of the other byte order as native).
            assert _same(back, pickle.loads(pickle.dumps(value, protocol=5)))
            assert back.flags.writeable

        check()


_BUFFER_SIZES = st.sampled_from([0, 10, 64 * 1024, segments.SHM_MIN - 1, segments.SHM_MIN, 3 * MIB])


def test_bytes_bytearray_and_memoryviews_round_trip_exactly() -> None:
    with TaskPool(2) as pool:

        @settings(max_examples=20, deadline=None)
        @given(size=_BUFFER_SIZES, kind=st.sampled_from([bytes, bytearray, memoryview]))
        def check(size: int, kind: type) -> None:
            data = os.urandom(size)
            value = kind(data) if kind is not memoryview else memoryview(bytearray(data))
            back = pool.submit(lj.echo, value).result(timeout=TIMEOUT)
            assert type(back) is type(value)
            assert bytes(back) == data

        check()


def test_argument_arrays_are_writable_in_the_job_and_the_parents_stay_untouched(
    start_method: str,
) -> None:
    with TaskPool(1, start_method=start_method) as pool:
        array = np.zeros(2 * MIB // 8)
        for _ in range(
            3
        ):  # the segment is reused: each job sees the parent's zeros, not the last job's ones
            assert pool.submit(lj.scribble, array).result(timeout=TIMEOUT) == (True, array.size)
        assert not array.any()


def test_a_job_sees_its_arguments_as_they_were_when_it_was_submitted(tmp_path: Path) -> None:
    with TaskPool(1) as pool:
        release = tmp_path / "release"
        blocker = pool.submit(lj.wait_for, str(release))
        array = np.ones(2 * MIB // 8)
        later = pool.submit(lj.total, array)
        array[...] = 5  # after submit, before the job runs: the job must not see it
        release.touch()
        blocker.result(timeout=TIMEOUT)
        assert later.result(timeout=TIMEOUT) == array.size


def test_a_retry_after_a_crash_sees_the_arguments_as_submitted(
    start_method: str, tmp_path: Path
) -> None:
    with TaskPool(1, start_method=start_method) as pool:
        array = np.ones(2 * MIB // 8)
        again = pool.options(retry=Retry(attempts=2, on_crash=True))
        future = again.submit(lj.scribble_then_crash, array, str(tmp_path / "marker"))
        assert future.result(timeout=TIMEOUT) == array.size, "the crashed attempt's writes leaked"


def test_large_results_reuse_segments_and_stay_valid_after_the_pool_ends() -> None:
    before = _memfds()
    with TaskPool(1) as pool:
        kept = [pool.submit(lj.make_array, MIB, float(i)).result(timeout=TIMEOUT) for i in range(3)]
        for _ in range(5):
            value = pool.submit(lj.make_array, MIB, 9.0).result(timeout=TIMEOUT)
            assert value.sum() == 9.0 * MIB
            del value
    assert [float(k[0]) for k in kept] == [0.0, 1.0, 2.0]
    assert kept[2][-1] == 2.0
    del kept
    assert _memfds() == before, "the parent holds no segment once the results it kept are dropped"


# -- lifetime: nothing outlives the pool, whatever happens ----------------------------------------------------


def test_no_segment_is_left_after_a_crash_and_a_timeout(start_method: str, tmp_path: Path) -> None:
    before_fds, before_shm = _memfds(), _dev_shm()
    big = np.ones(2 * MIB // 8)
    with TaskPool(1, start_method=start_method) as pool:
        with pytest.raises(WorkerCrashedError):
            pool.submit(lj.crash_with, big).result(timeout=TIMEOUT)
        started = tmp_path / "started"
        # Long enough that the job starts (and maps its argument) before the deadline, even on a busy machine.
        hung = pool.options(timeout=2.0).submit(lj.hang_with, big, str(started))
        with pytest.raises(JobTimeoutError):
            hung.result(timeout=TIMEOUT)
        assert started.exists()
        # The pool goes on, through shared memory still.
        assert pool.submit(lj.scribble, big).result(timeout=TIMEOUT) == (True, big.size)
    assert _memfds() == before_fds
    assert _dev_shm() == before_shm


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from taskpool import TaskPool
    from tests.integration import _large_data_jobs as lj

    if __name__ == "__main__":
        pool = TaskPool(2, start_method=sys.argv[1])
        result = pool.submit(lj.make_array, 2 * 1024 * 1024, 1.0).result(timeout=60)
        pids = {pool.submit(lj.worker_pid).result(timeout=60) for _ in range(4)}
        pool.submit(lj.hang_with, np.ones(2 * 1024 * 1024 // 8), sys.argv[2])
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.01)  # polls a file a worker writes: the test's way to know the job started
        print(" ".join(str(p) for p in pids | {int(open(sys.argv[2]).read())}), flush=True)
        time.sleep(120)
    """
)


def test_no_segment_is_left_after_the_parent_is_killed(tmp_path: Path) -> None:
    before_shm = _dev_shm()
    script = tmp_path / "parent.py"
    script.write_text(_ORPHAN_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), "forkserver", str(tmp_path / "started")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=SCRIPT_ENV,
    )
    tree: set[int] = set()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert pids, "the parent script printed no worker pid"
        held = _memfds(proc.pid) + sum(_memfds(p) for p in pids)
        assert held > 0, "the parent and its workers hold segments while the jobs run"
        children = [psutil.Process(p) for p in pids]
        # The parent's whole tree (its template too): the processes that could hold its segments. Other
        # programs on the machine (another test run, say) may hold segments of their own pools.
        tree = {
            proc.pid,
            *pids,
            *(c.pid for c in psutil.Process(proc.pid).children(recursive=True)),
        }
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(TIMEOUT) == -signal.SIGKILL
        _gone, alive = psutil.wait_procs(children, timeout=TIMEOUT)
        assert not alive, f"workers outlived their parent: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
    holders = [pid for pid in sorted(tree) if _memfds(pid)]
    assert holders == [], f"processes still hold taskpool's segments: {holders}"
    assert _dev_shm() == before_shm


# -- no shared memory: the pipe, with one warning --------------------------------------------------------------


def test_without_memfd_jobs_run_through_the_pipe_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(*args: Any) -> int:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    monkeypatch.setattr(shm, "_warned", type(shm._warned)())
    with caplog.at_level(logging.WARNING, logger="taskpool"), TaskPool(2) as pool:
        big = np.arange(2 * MIB // 8, dtype=np.float64)
        futures = [pool.submit(lj.echo, big) for _ in range(3)]
        futures += [pool.submit(lj.make_array, MIB, 2.0) for _ in range(3)]
        results = [f.result(timeout=TIMEOUT) for f in futures]
    assert all(_same(r, big) for r in results[:3])
    assert all(r.sum() == 2.0 * MIB for r in results[3:])
    warnings = [r for r in caplog.records if "shared memory is not available" in r.getMessage()]
    assert len(warnings) == 1, [w.getMessage() for w in warnings]


# -- pool.share and pool.shared.array --------------------------------------------------------------------------


def test_a_shared_object_is_unpickled_at_most_once_per_worker(start_method: str) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        weights = np.arange(MIB // 8, dtype=np.float64)
        handle = pool.share({"weights": weights})
        futures = [pool.submit(lj.use_shared, handle, i) for i in range(20)]
        results = [f.result(timeout=TIMEOUT) for f in futures]
    assert [r[2] for r in results] == [float(i) for i in range(20)]
    assert not any(r[3] for r in results), "a shared object's arrays are read-only in jobs"
    objects: dict[int, set[int]] = {}
    for oid, pid, _value, _writable in results:
        objects.setdefault(pid, set()).add(oid)
    assert all(len(ids) == 1 for ids in objects.values()), objects


def test_a_shared_object_travels_only_as_an_argument() -> None:
    import functools

    from taskpool import SerializationError

    with TaskPool(1) as pool:
        handle = pool.share({"weights": np.zeros(4)})
        with pytest.raises(SerializationError, match="travels only in a job's arguments"):
            pool.submit(functools.partial(lj.use_shared, handle), 0).result(timeout=TIMEOUT)


def test_jobs_write_a_shared_array_that_the_parent_reads_in_place(start_method: str) -> None:
    before = _memfds()
    with TaskPool(2, start_method=start_method) as pool:
        table = pool.shared.array((6, 1000), np.int32)
        assert isinstance(table, np.ndarray)
        assert table.dtype == np.int32
        assert not table.any()
        for f in [pool.submit(lj.fill_row, table, row) for row in range(6)]:
            f.result(timeout=TIMEOUT)
        assert [int(table[row].sum()) for row in range(6)] == [row * 1000 for row in range(6)]
        view = pool.submit(lj.echo, table[2:4, ::10]).result(timeout=TIMEOUT)
        view[0, 0] = -1  # a view a job returns is the same memory
        assert table[2, 0] == -1
        copy = pool.submit(lj.echo, table[2:4] + 1).result(timeout=TIMEOUT)
        copy[0, 0] = 123  # an array computed from it has memory of its own
        assert table[2, 0] == -1
        assert pool.shared.array("i", [1, 2]).tolist() == [1, 2], (
            "the Manager-backed array still works"
        )
        handle = pool.share([1, 2])
    assert table[2, 0] == -1, "an array the caller holds keeps its memory after the pool ended"
    del table, view, copy
    assert _memfds() == before, "the pool's shared memory is freed with it"
    with pytest.raises(PoolClosedError):
        pool.share([3])
    with pytest.raises(PoolClosedError):
        pool.submit(lj.echo, handle)


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_in_process_backends_share_the_object_itself(backend: str) -> None:
    with TaskPool(2, backend=backend) as pool:
        obj = {"weights": np.zeros(3)}
        assert pool.share(obj) is obj
        table = pool.shared.array(4, np.float64)
        pool.submit(lj.fill_row, table.reshape(1, 4), 0).result(timeout=TIMEOUT)
        assert table.shape == (4,)
        assert not table.any()


def test_bad_shapes_are_refused_before_anything_is_made() -> None:
    with TaskPool(1) as pool, pytest.raises(TypeError, match="shape must be"):
        pool.shared.array((2, -1), np.float64)


# -- memory and imports --------------------------------------------------------------------------------------


def test_workers_import_numpy_only_for_jobs_that_use_it() -> None:
    with TaskPool(1, start_method="spawn") as pool:
        assert pool.submit(lj.numpy_imported).result(timeout=TIMEOUT) is False
        assert pool.submit(lj.echo, b"x" * (2 * MIB)).result(timeout=TIMEOUT) == b"x" * (2 * MIB)
        assert pool.submit(lj.numpy_imported).result(timeout=TIMEOUT) is False


_PEAK_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from taskpool import TaskPool
    from tests.integration import _large_data_jobs as lj

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    if __name__ == "__main__":
        size = int(sys.argv[1])
        with TaskPool(1) as pool:
            pool.submit(lj.echo, 1).result(timeout=60)
            array = np.ones(size // 8)
            before = peak()
            writable, total = pool.submit(lj.scribble, array).result(timeout=60)
            assert writable and total == array.size
            print(peak() - before)
    """
)


def test_a_large_array_argument_costs_the_parent_at_most_one_copy(tmp_path: Path) -> None:
    size = 128 * MIB
    out = run_script(tmp_path / "peak.py", _PEAK_SCRIPT, str(size), timeout=TIMEOUT)
    # The segment is filled with pwrite, never mapped here: the one extra copy is not even in the parent's RSS.
    assert int(out.strip()) <= size + 32 * MIB


def test_a_frame_with_more_large_buffers_than_the_socket_holds_goes_through(
    start_method: str,
) -> None:
    # One map chunk of 300 arrays over the threshold, both ways: more descriptors than a Unix socket queues
    # before the frame that names them is read; those past what it takes travel in the pipe.
    items = [np.full(segments.SHM_MIN // 8 + 1, float(i)) for i in range(300)]
    with TaskPool(1, start_method=start_method) as pool:
        started = time.monotonic()
        out = pool.map(lj.echo, items, chunksize=len(items))
        assert time.monotonic() - started < 30
    assert [float(a[0]) for a in out] == [float(i) for i in range(300)]
    assert all(a.shape == items[0].shape for a in out)
