"""The semantics of apply, apply_async and the map family, held to multiprocessing.Pool's as the oracle.

Hypothesis generates job lists (values and which ones raise), chunksizes and worker counts; each property runs
on taskpool's process backend with one and two workers, and on the thread and inline backends, and compares
with a `multiprocessing.Pool` of the same size fed the same jobs. Pools live for the whole module (starting
processes per example would dominate the run), so this module checks for leftover processes once, at its end.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskpool import TaskPool
from tests import jobs

TIMEOUT = 30
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

jobs_strategy = st.lists(
    st.tuples(st.integers(-1000, 1000), st.sampled_from([0, 0, 0, 1, 2, 3])), max_size=30
)
ok_jobs = st.lists(st.integers(-1000, 1000), max_size=60)
chunksizes = st.one_of(st.none(), st.integers(1, 12))

try:
    import distributed  # noqa: F401
except ImportError:  # the dask extra is not installed: the dask pool is left out
    HAVE_DASK = False
else:
    HAVE_DASK = True

# The dask pool is a LocalCluster of two worker processes, the same semantics on a different engine.
POOLS = [("process", 1), ("process", 2), ("thread", 2), ("inline", 1)] + (
    [("dask", 2)] if HAVE_DASK else []
)


@pytest.fixture
def no_leftovers() -> None:
    """The module's pools outlive each test; `pools` checks for leftovers when it ends them."""


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[tuple[str, int], TaskPool]]:
    made = {(backend, n): TaskPool(n, backend=backend) for backend, n in POOLS}
    yield made
    for pool in made.values():
        pool.close()
        assert pool.join(TIMEOUT)


@pytest.fixture(scope="module")
def oracles() -> Iterator[dict[int, multiprocessing.pool.Pool]]:
    ctx = multiprocessing.get_context("forkserver")
    made = {n: ctx.Pool(n) for n in (1, 2)}
    yield made
    for pool in made.values():
        pool.close()
        pool.join()


def _outcome_of(call: Any) -> tuple[str, Any]:
    """('ok', value) or ('raised', (type, args)) of a call, to compare outcomes across pools."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("raised", (type(exc), exc.args))


@pytest.mark.parametrize(("backend", "workers"), POOLS)
@SETTINGS
@given(job_list=jobs_strategy)
def test_apply_equals_the_serial_call_and_the_oracle(
    pools: dict[tuple[str, int], TaskPool],
    oracles: dict[int, multiprocessing.pool.Pool],
    backend: str,
    workers: int,
    job_list: list[tuple[int, int]],
) -> None:
    pool, oracle = pools[backend, workers], oracles[workers]
    for value, fail in job_list:
        call = (value, fail)
        serial = _outcome_of(lambda: jobs.outcome(*call))  # noqa: B023  (called before the loop moves on)
        ours = _outcome_of(lambda: pool.apply(jobs.outcome, call))  # noqa: B023
        theirs = _outcome_of(lambda: oracle.apply(jobs.outcome, call))  # noqa: B023
        assert ours == serial == theirs


class CallbackLog:
    """Records callbacks: which ran, how often, where, and whether two ever overlapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[int, str, Any]] = []
        self.active = 0
        self.overlapped = False
        self.foreign: list[tuple[int, str]] = []

    def make(self, index: int, kind: str) -> Any:
        def callback(arg: Any) -> None:
            with self.lock:
                self.active += 1
                self.overlapped |= self.active > 1
            if os.getpid() != PARENT or threading.current_thread() is threading.main_thread():
                self.foreign.append((os.getpid(), threading.current_thread().name))
            self.calls.append((index, kind, arg))
            with self.lock:
                self.active -= 1

        return callback


PARENT = os.getpid()


@pytest.mark.parametrize(("backend", "workers"), POOLS)
@SETTINGS
@given(job_list=jobs_strategy)
def test_apply_async_runs_exactly_one_callback_once_in_the_parent_before_get(
    pools: dict[tuple[str, int], TaskPool],
    oracles: dict[int, multiprocessing.pool.Pool],
    backend: str,
    workers: int,
    job_list: list[tuple[int, int]],
) -> None:
    pool, oracle = pools[backend, workers], oracles[workers]
    ours, theirs = CallbackLog(), CallbackLog()
    futures = [
        pool.apply_async(
            jobs.outcome, (v, f), callback=ours.make(i, "ok"), error_callback=ours.make(i, "err")
        )
        for i, (v, f) in enumerate(job_list)
    ]
    results = [
        oracle.apply_async(
            jobs.outcome,
            (v, f),
            callback=theirs.make(i, "ok"),
            error_callback=theirs.make(i, "err"),
        )
        for i, (v, f) in enumerate(job_list)
    ]
    for i, (future, result) in enumerate(zip(futures, results, strict=True)):
        mine = _outcome_of(lambda f=future: f.get(TIMEOUT))
        # The callback has run before get() returned.
        assert [c for c in ours.calls if c[0] == i], (
            f"job {i}: get() returned before its callback ran"
        )
        assert mine == _outcome_of(lambda r=result: r.get(TIMEOUT))
    assert sorted(c[:2] for c in ours.calls) == sorted(c[:2] for c in theirs.calls)
    assert len(ours.calls) == len(job_list)  # exactly one per job, once
    assert not ours.overlapped
    assert not ours.foreign, "a callback ran outside the parent's non-main threads"
    if workers == 1:
        assert [c[0] for c in ours.calls] == list(range(len(job_list)))


@pytest.mark.parametrize(("backend", "workers"), POOLS)
@SETTINGS
@given(values=ok_jobs, chunksize=chunksizes)
def test_the_map_family_keeps_order_and_chunksize_never_changes_results(
    pools: dict[tuple[str, int], TaskPool],
    oracles: dict[int, multiprocessing.pool.Pool],
    backend: str,
    workers: int,
    values: list[int],
    chunksize: int | None,
) -> None:
    pool, oracle = pools[backend, workers], oracles[workers]
    expected = [jobs.square(v) for v in values]
    assert (
        pool.map(jobs.square, values, chunksize=chunksize)
        == expected
        == oracle.map(jobs.square, values, chunksize)
    )
    pairs = [(v, v + 1) for v in values]
    assert pool.starmap(jobs.add, pairs, chunksize=chunksize) == oracle.starmap(
        jobs.add, pairs, chunksize
    )
    imap_chunk = chunksize or 1
    assert list(pool.imap(jobs.square, iter(values), imap_chunk)) == expected
    assert sorted(pool.imap_unordered(jobs.square, iter(values), imap_chunk)) == sorted(expected)


@pytest.mark.parametrize(("backend", "workers"), POOLS)
@SETTINGS
@given(job_list=jobs_strategy, chunksize=chunksizes)
def test_map_raises_what_the_oracle_raises(
    pools: dict[tuple[str, int], TaskPool],
    oracles: dict[int, multiprocessing.pool.Pool],
    backend: str,
    workers: int,
    job_list: list[tuple[int, int]],
    chunksize: int | None,
) -> None:
    pool, oracle = pools[backend, workers], oracles[workers]
    ours = _outcome_of(lambda: pool.starmap(jobs.outcome, job_list, chunksize=chunksize))
    theirs = _outcome_of(lambda: oracle.starmap(jobs.outcome, job_list, chunksize))
    serial = [_outcome_of(lambda v=v, f=f: jobs.outcome(v, f)) for v, f in job_list]
    failures = [o for o in serial if o[0] == "raised"]
    if not failures:
        assert ours == theirs == ("ok", [o[1] for o in serial])
        return
    # Both raise one of the jobs' own exceptions. multiprocessing.Pool raises whichever failed chunk
    # came back first (with several workers, that varies from run to run); taskpool raises the first
    # failure in input order, every time.
    assert theirs in failures
    assert ours == failures[0]
    if workers == 1:
        assert ours == theirs
