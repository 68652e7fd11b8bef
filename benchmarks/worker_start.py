"""How fast a pool starts its workers: ``python -m benchmarks.worker_start [--repeats N]``.

Three measures, each the median of ``--repeats`` runs, the contenders interleaved run by run:

- *first pool*: import, start a pool of 2 workers, run one job, shut it down, in a fresh interpreter; what a
  program pays once.
- *later pool*: the same in a process that has run a pool of the same kind already: the median of the
  second to the fourth pool of a program; what every later pool pays.
- *crash to replacement*: a warm one-worker pool runs a job that kills its worker; the time from submitting
  it to the result of the next job, which the replacement runs.

Every measure runs in a fresh interpreter running a small script file (workers under spawn and forkserver
import the main module again, so the benchmark's own would be measured too). Runs in the benchmark's own
process, which starts those interpreters with subprocess.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_SCRIPT = """
import sys, time


def run(which):
    if which.startswith("taskpool"):
        from taskpool import TaskPool
        method = None if which == "taskpool" else which.split("-")[1]
        with TaskPool(2, start_method=method) as pool:
            pool.submit(abs, -1).result(timeout=60)
    elif which == "cf-forkserver":
        import concurrent.futures, multiprocessing
        ctx = multiprocessing.get_context("forkserver")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
            ex.submit(abs, -1).result(timeout=60)
    elif which == "mp-fork":
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:
            pool.apply_async(abs, (-1,)).get(timeout=60)


def crash(which):
    import os
    from taskpool import TaskPool
    method = None if which == "taskpool" else which.split("-")[1]
    with TaskPool(1, start_method=method) as pool:
        pool.submit(abs, -1).result(timeout=60)
        t0 = time.perf_counter()
        pool.submit(os._exit, 1)
        pool.submit(abs, -1).result(timeout=60)
        return time.perf_counter() - t0


if __name__ == "__main__":
    measure, which = sys.argv[1:3]
    if measure == "crash":
        print(crash(which))
    else:
        later = []
        for _ in range(4 if measure == "later" else 1):
            t0 = time.perf_counter()
            run(which)
            later.append(time.perf_counter() - t0)
        print(sorted(later[1:])[1] if measure == "later" else later[0])
"""

FIRST = ("taskpool", "cf-forkserver", "mp-fork", "taskpool-fork")
LATER = ("taskpool", "mp-fork", "cf-forkserver")
CRASH = ("taskpool", "taskpool-fork")


def measure(script: Path, what: str, which: str) -> float:
    """Seconds that ``what`` (first, later, crash) takes for contender ``which``, in a fresh interpreter."""
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(script), what, which],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="How fast a pool starts its workers")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    plan = [("first", FIRST), ("later", LATER), ("crash", CRASH)]
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "start.py"
        script.write_text(_SCRIPT)
        for _ in range(args.repeats):
            for what, contenders in plan:
                for which in contenders:
                    times.setdefault((what, which), []).append(measure(script, what, which))
    print(f"medians of {args.repeats} interleaved runs, in ms")
    for (what, which), values in times.items():
        print(f"  {what:6} {which:15} {statistics.median(values) * 1000:7.1f}")


if __name__ == "__main__":
    main()
