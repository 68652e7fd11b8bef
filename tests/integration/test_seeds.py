"""Per-job seeds: the same draws whatever the workers, chunking, scheduling and retries; clear errors.

Jobs return what they drew from their own generator (`job_rng`) and from the global ``random`` module, which
the worker reseeds before each job.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import taskpool
from taskpool import Retry, TaskPool

from .. import _seed_jobs as sj

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 30.0
N = 1000


def _map_draws(workers: int, chunksize: int, start_method: str | None = None) -> list[Any]:
    with TaskPool(workers, seed=42, start_method=start_method) as pool:
        return pool.map(sj.draws, range(N), chunksize=chunksize)


def test_a_map_draws_the_same_numbers_whatever_the_workers_and_the_chunking(
    start_method: str,
) -> None:
    reference = _map_draws(1, 50, start_method)
    assert len(set(reference)) == N  # every item drew its own numbers
    assert all(mine != glob for mine, glob in reference)  # job_rng and random are different streams
    assert _map_draws(2, 1, start_method) == reference
    assert _map_draws(2, 50, start_method) == reference
    assert _map_draws(1, 1, start_method) == reference


def test_every_member_of_the_map_family_numbers_its_items_alike() -> None:
    pairs = [(i, -i) for i in range(40)]
    with TaskPool(2, seed=7) as pool:
        first = pool.map(sj.draws, range(40))  # map-family call 0
        second = list(pool.imap(sj.draws, range(40), chunksize=3))  # call 1
    with TaskPool(2, seed=7) as pool:
        assert list(pool.imap(sj.draws, range(40), chunksize=7)) == first
        unordered = list(pool.imap_unordered(sj.draws, range(40), chunksize=5))
        assert sorted(unordered) == sorted(second)
        starred = pool.starmap(sj.star_draws, pairs, chunksize=4)  # call 2

        async def amap() -> list[Any]:
            return [r async for r in pool.amap(sj.draws, range(40), chunksize=6)]

        fourth = asyncio.run(amap())  # call 3
    assert len({*first, *second, *starred, *fourth}) == 160  # each call its own stream


def test_submissions_draw_by_their_order() -> None:
    def run() -> list[Any]:
        with TaskPool(2, seed=3) as pool:
            futures = [pool.submit(sj.draws, i) for i in range(20)]
            futures.append(pool.apply_async(sj.draws, (20,)))
            return [f.result(TIMEOUT) for f in futures]

    first = run()
    assert len(set(first)) == 21
    assert run() == first


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_the_in_process_backends_draw_what_the_process_backend_draws(backend: str) -> None:
    # One thread: the global `random` is not shared with a concurrent job (see the docs' caveat).
    with TaskPool(1, seed=42, backend=backend) as pool:
        assert pool.map(sj.draws, range(N), chunksize=50) == _map_draws(2, 7)
    with TaskPool(2, seed=42, backend=backend) as pool:
        mine = [m for m, _ in pool.map(sj.draws, range(N), chunksize=3)]
    assert mine == [m for m, _ in _map_draws(1, 50)]


def test_the_multiprocessing_drop_in_draws_what_taskpool_draws() -> None:
    """``taskpool.Pool(seed=...)``: its map family and its single calls number their jobs as TaskPool's."""
    with taskpool.Pool(2, seed=42) as pool:
        mapped = pool.map(sj.draws, range(N), chunksize=9)
        imapped = list(pool.imap(sj.draws, range(40), chunksize=4))
        single = pool.apply_async(sj.draws, (0,)).get(TIMEOUT)
    with TaskPool(2, seed=42) as tp:
        assert mapped == tp.map(sj.draws, range(N), chunksize=50)
        assert imapped == tp.map(sj.draws, range(40))
        assert single == tp.submit(sj.draws, 0).result(TIMEOUT)
    with taskpool.Pool(2) as unseeded:
        assert "need a pool made with a seed" in unseeded.apply(sj.seed_or_error, (0,))


def test_a_retry_draws_what_the_first_attempt_would_have(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    with TaskPool(2, seed=5, retry=Retry(attempts=2, on=(ConnectionError,))) as pool:
        future = pool.submit(sj.fail_once_then_draw, marker)
        retried = future.result(TIMEOUT)
        assert future.attempts == 2
    with TaskPool(2, seed=5) as pool:  # the marker exists: the same submission succeeds at once
        assert pool.submit(sj.fail_once_then_draw, marker).result(TIMEOUT) == retried


def test_a_job_retried_after_its_worker_crashed_draws_the_same(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    with TaskPool(2, seed=5, retry=Retry(attempts=2, on_crash=True)) as pool:
        retried = pool.map(sj.crash_once_then_draw, [marker] * 3, chunksize=3)
    with TaskPool(2, seed=5) as pool:
        assert pool.map(sj.crash_once_then_draw, [marker] * 3, chunksize=1) == retried


def test_other_seeds_draw_other_numbers() -> None:
    with TaskPool(2, seed=1) as one, TaskPool(2, seed=2) as two:
        a = one.map(sj.all_draws, range(50))
        b = two.map(sj.all_draws, range(50))
    for column in range(5):
        assert {row[column] for row in a}.isdisjoint(row[column] for row in b)


def test_numpy_draws_are_reproducible_too() -> None:
    with TaskPool(1, seed=9) as pool:
        one = pool.map(sj.all_draws, range(100), chunksize=100)
        assert all(pool.map(sj.same_rng_twice, range(4)))
    with TaskPool(2, seed=9) as pool:
        two = pool.map(sj.all_draws, range(100), chunksize=1)
    assert one == two
    assert len({row[3] for row in one}) == len({row[4] for row in one}) == 100


@pytest.mark.parametrize("backend", ["process", "thread", "inline"])
def test_job_seed_without_a_seeded_pool_says_to_pass_seed(backend: str) -> None:
    with TaskPool(1, backend=backend) as pool:
        message = pool.submit(sj.seed_or_error, 0).result(TIMEOUT)
    assert message.startswith("error: ")
    assert "TaskPool(seed=" in message


def test_job_seed_outside_a_job_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="running no job"):
        taskpool.job_seed()
    with pytest.raises(RuntimeError, match="running no job"):
        taskpool.job_rng()


def test_bad_seeds_are_refused_before_anything_starts() -> None:
    for bad in (-1, 1.5, "42", True):
        with pytest.raises(ValueError, match="seed must be a whole number >= 0"):
            TaskPool(1, seed=bad)  # type: ignore[arg-type]


def test_the_dask_backend_draws_what_the_process_backend_draws() -> None:
    pytest.importorskip("distributed")
    with TaskPool(2, seed=42, backend="dask") as pool:
        drawn = pool.map(sj.draws, range(40), chunksize=3)
    # Each Dask worker of the local cluster runs one job at a time: its global `random` is its job's alone.
    assert drawn == _map_draws(1, 50)[:40]


@pytest.mark.parametrize("chunksize", ["1", "7"])
def test_taskpool_run_seed_draws_what_a_first_map_on_a_seeded_pool_draws(chunksize: str) -> None:
    from .test_cli import records, taskpool

    done = taskpool(
        "run", "tests._seed_jobs:draws", "--range", "0", "30", "--seed", "42", "--workers", "2",
        "--chunksize", chunksize,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    drawn = [tuple(r["result"]) for r in records(done.stdout)]
    assert drawn == _map_draws(1, 50)[:30]
