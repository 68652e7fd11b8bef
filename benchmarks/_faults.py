"""Scenarios about workers that fail or stall: ``crash`` (recovery and replacement) and ``stragglers``.

Runs in a child runner (`benchmarks._run`) only; the jobs it sends (`benchmarks._jobs.crash`, ``where``,
``straggle``) run in the pool's workers. Times that span processes (from a worker's crash to another worker's
next job) are read on `time.monotonic`, which on Linux and macOS is one clock for every process.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import _jobs
from benchmarks._adapter import WORKERS, Unsupported, Where
from benchmarks._adapters import Taskpool
from benchmarks._sample import Params, Row, opened, row

if TYPE_CHECKING:
    from benchmarks._adapter import Adapter

__all__ = ["crash", "stragglers"]

#: How long a probe job sleeps: long enough that a batch of them spreads over the workers, short enough to
#: bound the error of the replacement time (one probe round, about this plus the pool's round trip).
_PROBE_S = 0.001
#: How long to wait for a replacement worker to run a job before the sample fails.
_REPLACE_WAIT_S = 60.0


def _worker_pids(adapter: Adapter) -> set[int]:
    """The pids of the workers that run jobs now: rounds of sleeping jobs until every worker has run one."""
    pids: set[int] = set()
    for _ in range(50):
        pids |= {pid for pid, _ in adapter.submit_all(_jobs.where, [(0.01,)] * WORKERS)}
        if len(pids) >= WORKERS:
            return pids
    raise AssertionError(f"only {len(pids)} of {WORKERS} workers ran a job in 50 rounds")


def _first_new_job(adapter: Adapter, known: set[int]) -> float:
    """When the first job started in a worker that is not one of `known`: rounds of probes until one does."""
    deadline = time.monotonic() + _REPLACE_WAIT_S
    while time.monotonic() < deadline:
        probes: list[Where] = adapter.submit_all(_jobs.where, [(_PROBE_S,)] * WORKERS)
        started = [t for pid, t in probes if pid not in known]
        if started:
            return min(started)
    raise AssertionError(f"no new worker ran a job within {_REPLACE_WAIT_S:.0f} s of the crash")


def crash(adapter: Adapter, p: Params) -> list[Row]:
    """Per crash: until the pool is usable again (``ms``), and until a new worker has run a job (``replace_ms``).

    The first is the time from submitting the crashing job until its future has failed and a following job
    has completed, which the surviving worker may well run. The second is from the crash itself (the time the
    job wrote just before ``os._exit``) to the start of the first job in a worker that was not there before:
    the replacement, or for an executor that must be rebuilt, a worker of the new one.
    """
    n = int(p["crashes"])
    recover: list[float] = []
    replace: list[float] = []
    name = ""
    with opened(adapter), tempfile.TemporaryDirectory(prefix="taskpool-bench-crash-") as tmp:
        for i in range(n):
            known = _worker_pids(adapter)
            stamp = Path(tmp, f"crash-{i}")
            t0 = time.perf_counter()
            name, (pid, started) = adapter.crash_and_recover(str(stamp))
            recover.append(time.perf_counter() - t0)
            crashed_at = float(stamp.read_text())
            if pid in known:
                started = _first_new_job(adapter, known)
            replace.append(started - crashed_at)
            adapter.warm()
    metrics = {
        "ms": statistics.median(recover) * 1e3,
        "replace_ms": statistics.median(replace) * 1e3,
    }
    return [row(metrics, n, note=f"fails with {name}")]


def stragglers(adapter: Adapter, p: Params) -> list[Row]:
    """Makespan of many short jobs of which a few, picked at random with a fixed seed, stall on first run.

    taskpool runs the same batch a second time with backup copies of slow jobs (``options(backup_after=...)``)
    when the installed taskpool has them; the plain row notes it when not.
    """
    n, job_s, stall_s = int(p["jobs"]), p["job_ms"] / 1e3, p["stall_ms"] / 1e3
    stalled = set(random.Random(int(p["seed"])).sample(range(n), int(p["stalls"])))
    backup_s = p["backup_ms"] / 1e3
    rows = []
    with opened(adapter), tempfile.TemporaryDirectory(prefix="taskpool-bench-straggle-") as tmp:

        def batch(tag: str) -> list[tuple[float, float, str | None]]:
            # A fresh marker per job and batch: each batch's stalled jobs stall on their first run.
            marker = os.path.join(tmp, tag + "-{}")
            return [(job_s, stall_s, marker.format(i) if i in stalled else None) for i in range(n)]

        t0 = time.perf_counter()
        adapter.submit_all(_jobs.straggle, batch("plain"))
        rows.append(row({"makespan_s": time.perf_counter() - t0}, n))
        if isinstance(adapter, Taskpool):
            args = batch("backup")
            try:
                t0 = time.perf_counter()
                adapter.submit_all_with({"backup_after": backup_s}, _jobs.straggle, args)
                rows.append(row({"makespan_s": time.perf_counter() - t0}, n, "+backup"))
            except Unsupported as exc:
                rows[0]["note"] = f"+backup not run: {exc}"
    return rows
