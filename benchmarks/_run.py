"""Child runner: one contender, one scenario, one sample, in a fresh process.

The harness parent starts ``python -m benchmarks._run --contender NAME --scenario NAME --params JSON
--result-file PATH`` once per sample, in a new session (process group) of its own so that the parent can kill
the runner together with every worker it started. This process builds the contender's adapter, times the
scenario, and writes one JSON object to the result file (stdout and stderr belong to the libraries under test
and are only kept for diagnostics):

    {"status": "ok", "rows": [{"variant": "", "metrics": {...}, "n": 20000, "note": ""}], "peak_rss_mb": 41.2,
     "taskpool_file": "/path/to/src/taskpool/__init__.py"}
    {"status": "skipped" | "failed", "reason": "..."}

``taskpool_file`` is where this process imported taskpool from (None if it did not): the parent checks it
against the tree the contender is meant to run, which it put first on PYTHONPATH.

The pool's workers are this process's children (or, for Dask, its nanny's); the peak RSS reported is this
process's own (`resource.getrusage`), i.e. the parent side of the pool.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import _arrays, _faults, _jobs
from benchmarks._adapter import WAIT_S, WORKERS, Skip, Unsupported
from benchmarks._contenders import CONTENDERS
from benchmarks._sample import Params, Row, opened, peak_rss_mb, row, taskpool_only

if TYPE_CHECKING:
    from collections.abc import Callable

    from benchmarks._adapter import Adapter


def tiny(adapter: Adapter, p: Params) -> list[Row]:
    n = int(p["jobs"])
    args: list[tuple[Any, ...]] = [()] * n
    rows = []
    with opened(adapter):
        for variant, submit in adapter.tiny_variants().items():
            t0 = time.perf_counter()
            submit(args)
            elapsed = time.perf_counter() - t0
            rows.append(row({"us_per_job": elapsed / n * 1e6}, n, variant))
    return rows


def map_(adapter: Adapter, p: Params) -> list[Row]:
    items = list(range(int(p["items"])))
    with opened(adapter):
        t0 = time.perf_counter()
        out = adapter.map(_jobs.square, items)
        elapsed = time.perf_counter() - t0
    if len(out) != len(items) or out[-1] != items[-1] ** 2:
        raise AssertionError("map returned wrong results")
    return [row({"items_per_s": len(items) / elapsed}, len(items))]


def cpu(adapter: Adapter, p: Params) -> list[Row]:
    n, loop = int(p["jobs"]), int(p["loop"])
    with opened(adapter):
        # The serial reference is timed here, next to the pool's run, rather than once in the parent: on a
        # shared machine the load changes between samples, and a stale reference skews the speedup (even
        # past the worker count). One job, times n: the jobs are identical.
        t0 = time.perf_counter()
        _jobs.cpu_loop(loop)
        serial_s = (time.perf_counter() - t0) * n
        t0 = time.perf_counter()
        adapter.submit_all(_jobs.cpu_loop, [(loop,)] * n)
        elapsed = time.perf_counter() - t0
    return [row({"speedup": serial_s / elapsed, "elapsed_s": elapsed, "serial_s": serial_s}, n)]


def startup(adapter: Adapter, p: Params) -> list[Row]:
    # The library is already imported (the adapter was built): only the pool's own cost is timed.
    t0 = time.perf_counter()
    with opened(adapter, warm=False):
        adapter.call(_jobs.noop)
    elapsed = time.perf_counter() - t0
    return [row({"ms": elapsed * 1e3}, 1)]


def large(adapter: Adapter, p: Params) -> list[Row]:
    n, mb = int(p["jobs"]), int(p["mb"])
    payload = os.urandom(mb * 2**20)
    with opened(adapter):
        t0 = time.perf_counter()
        out = adapter.submit_all(_jobs.length, [(payload,)] * n)
        elapsed = time.perf_counter() - t0
    if out != [len(payload)] * n:
        raise AssertionError("length returned wrong results")
    return [row({"mb_per_s": n * mb / elapsed}, n)]


def imap10m(adapter: Adapter, p: Params) -> list[Row]:
    n, chunksize = int(p["items"]), int(p["chunksize"])
    before = peak_rss_mb()
    with opened(adapter):
        t0 = time.perf_counter()
        count = 0
        for _ in adapter.imap(_jobs.square, (i for i in range(n)), chunksize):
            count += 1
        elapsed = time.perf_counter() - t0
    if count != n:
        raise AssertionError(f"imap yielded {count} of {n} results")
    peak = peak_rss_mb()
    return [
        row({"peak_rss_mb": peak, "items_per_s": n / elapsed, "rss_growth_mb": peak - before}, n)
    ]


class _Counter:
    """An event handler that counts calls and lets the runner wait until it has seen `target` of them."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, event: object) -> None:
        with self.cond:
            self.count += 1
            if self.count >= self.target:
                self.cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.count >= self.target, timeout)


def events(adapter: Adapter, p: Params) -> list[Row]:
    tp = taskpool_only(adapter)
    n = int(p["jobs"])
    args: list[tuple[Any, ...]] = [()] * n
    rows = []
    with opened(tp):
        t0 = time.perf_counter()
        tp.submit_all(_jobs.noop, args)
        rows.append(row({"us_per_job": (time.perf_counter() - t0) / n * 1e6}, n))
        counter = _Counter(2 * n)
        tp.pool.on("job_started", counter)
        tp.pool.on("job_succeeded", counter)
        t0 = time.perf_counter()
        tp.submit_all(_jobs.noop, args)
        # Handlers may still be running when the last future resolves; their cost is what this measures.
        if not counter.wait(WAIT_S):
            raise AssertionError(f"handlers saw {counter.count} of {2 * n} events")
        rows.append(row({"us_per_job": (time.perf_counter() - t0) / n * 1e6}, n, "+events"))
    return rows


def progress(adapter: Adapter, p: Params) -> list[Row]:
    tp = taskpool_only(adapter)
    items = list(range(int(p["items"])))
    n = len(items)
    rows = []
    with opened(tp), open(os.devnull, "w") as devnull:
        # The first map of a function pays for sending it to the workers: pay it before either timing.
        tp.map(_jobs.square, items[:1000])
        t0 = time.perf_counter()
        tp.map(_jobs.square, items)
        rows.append(row({"us_per_item": (time.perf_counter() - t0) / n * 1e6}, n))
        # The bar is drawn (disable=False: stderr is no terminal here) into devnull, so that the bar's own
        # bookkeeping is timed, not terminal I/O.
        t0 = time.perf_counter()
        tp.map_progress(_jobs.square, items, devnull)
        elapsed = time.perf_counter() - t0
        rows.append(row({"us_per_item": elapsed / n * 1e6}, n, "+progress"))
    return rows


def latency(adapter: Adapter, p: Params) -> list[Row]:
    n = int(p["calls"])
    samples = []
    with opened(adapter):
        for _ in range(max(20, n // 20)):
            adapter.call(_jobs.noop)
        for _ in range(n):
            t0 = time.perf_counter()
            adapter.call(_jobs.noop)
            samples.append(time.perf_counter() - t0)
    return [row({"us": statistics.median(samples) * 1e6}, n)]


def _cli_command() -> list[str]:
    try:
        importlib.import_module("taskpool._cli._run")  # what `taskpool run` needs, not only `main`
    except Exception as exc:
        raise Skip(f"the taskpool CLI does not import yet: {type(exc).__name__}: {exc}") from exc
    # Prefer the installed console script, which is exactly what users type; fall back to the module.
    script = shutil.which("taskpool", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from taskpool._cli import main; sys.exit(main())"]


def cli(adapter: Adapter, p: Params) -> list[Row]:
    stop, chunksize = int(p["stop"]), int(p.get("chunksize", 100))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "out.txt")
        cmd = [*_cli_command(), "run", "benchmarks._jobs:square", "--range", "0", str(stop)]
        cmd += ["-o", str(out), "--workers", str(WORKERS), "--chunksize", str(chunksize)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S, check=False)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise AssertionError(f"taskpool run exited with {proc.returncode}: {' | '.join(tail)}")
        if not out.exists() or out.stat().st_size == 0:
            raise AssertionError("taskpool run wrote no output")
    # RUSAGE_CHILDREN covers every waited-for descendant: the CLI process and the workers it reaped.
    rss = peak_rss_mb(resource.RUSAGE_CHILDREN)
    return [row({"wall_s": elapsed, "peak_rss_mb": rss, "items_per_s": stop / elapsed}, stop)]


SCENARIO_FUNCS: dict[str, Callable[[Adapter, Params], list[Row]]] = {
    "tiny": tiny,
    "map": map_,
    "cpu": cpu,
    "startup": startup,
    "large": large,
    "imap10m": imap10m,
    "events": events,
    "progress": progress,
    "crash": _faults.crash,
    "latency": latency,
    "cli": cli,
    "numpy_args": _arrays.numpy_args,
    "numpy_results": _arrays.numpy_results,
    "stragglers": _faults.stragglers,
}


def run(contender: str, scenario: str, params: Params) -> dict[str, Any]:
    """Build the adapter, run the scenario once, and describe the outcome as a JSON-able dict."""
    try:
        adapter = CONTENDERS[contender].make()
        rows = SCENARIO_FUNCS[scenario](adapter, params)
    except Skip as exc:
        return {"status": "skipped", "reason": str(exc)}
    except Unsupported as exc:
        return {"status": "skipped", "reason": f"not applicable: {exc}"}
    except Exception as exc:
        traceback.print_exc()
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    taskpool_file = getattr(sys.modules.get("taskpool"), "__file__", None)
    return {
        "status": "ok",
        "rows": rows,
        "peak_rss_mb": peak_rss_mb(),
        "taskpool_file": taskpool_file,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._run")
    parser.add_argument("--contender", required=True, choices=sorted(CONTENDERS))
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIO_FUNCS))
    parser.add_argument("--params", default="{}", help="the scenario's sizes as a JSON object")
    parser.add_argument("--result-file", required=True, type=Path)
    args = parser.parse_args(argv)
    outcome = run(args.contender, args.scenario, json.loads(args.params))
    args.result_file.write_text(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
