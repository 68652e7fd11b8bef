"""Scenarios that move numpy arrays: as job arguments (``numpy_args``) and as results (``numpy_results``).

Runs in a child runner (`benchmarks._run`) only; the jobs (`benchmarks._jobs.array_sum`, ``make_array``) run
in the pool's workers. numpy is optional: without it the sample is skipped (the harness parent skips the
whole scenario before starting a child, see `benchmarks._scenarios.Scenario.requires`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from benchmarks import _jobs
from benchmarks._adapter import WORKERS
from benchmarks._sample import Params, Row, opened, require, row

if TYPE_CHECKING:
    from benchmarks._adapter import Adapter

__all__ = ["numpy_args", "numpy_results"]


def _warm_numpy(adapter: Adapter, np: Any) -> None:
    """Make every worker import numpy before the clock starts (unpickling an array imports it)."""
    small = np.zeros(8)
    for _ in range(2):
        adapter.submit_all(_jobs.where, [(0.02, small)] * WORKERS)


def numpy_args(adapter: Adapter, p: Params) -> list[Row]:
    """Distinct random float64 arrays of `mb` MiB each as arguments; each job returns the array's sum."""
    np = require("numpy")
    n, mb = int(p["jobs"]), int(p["mb"])
    rng = np.random.default_rng(0)
    arrays = [rng.random(mb * 2**20 // 8) for _ in range(n)]
    expected = [float(a.sum()) for a in arrays]
    with opened(adapter):
        _warm_numpy(adapter, np)
        t0 = time.perf_counter()
        out = adapter.submit_all(_jobs.array_sum, [(a,) for a in arrays])
        elapsed = time.perf_counter() - t0
    if len(out) != n or not all(math.isclose(x, y) for x, y in zip(out, expected, strict=True)):
        raise AssertionError("array_sum returned wrong results")
    return [row({"mb_per_s": n * mb / elapsed}, n)]


def numpy_results(adapter: Adapter, p: Params) -> list[Row]:
    """Each job makes and returns a new float64 array of `mb` MiB; throughput of result data."""
    np = require("numpy")
    n, mb = int(p["jobs"]), int(p["mb"])
    with opened(adapter):
        _warm_numpy(adapter, np)
        t0 = time.perf_counter()
        out = adapter.submit_all(_jobs.make_array, [(mb, float(i)) for i in range(n)])
        elapsed = time.perf_counter() - t0
    for i, array in enumerate(out):
        if array.nbytes != mb * 2**20 or array[0] != i or array[-1] != i:
            raise AssertionError(f"make_array returned a wrong array for job {i}")
    return [row({"mb_per_s": n * mb / elapsed}, n)]
