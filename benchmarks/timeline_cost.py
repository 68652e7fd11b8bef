"""What recording a timeline costs: ``python -m benchmarks.timeline_cost [JOBS] [RUNS]`` from the project root.

For the process and thread backends, submits JOBS jobs that do nothing one by one to a 2-worker pool with and
without ``timeline=True`` (alternating, RUNS times each), and prints the median time per job of each and their
ratio; then how long taking the timeline and writing its page take for that many jobs. Jobs that do nothing are
the worst case: the cost per job is the same for real jobs, and small beside them.

Runs in the benchmark's own process (the main thread) and the pools' workers.
"""

from __future__ import annotations

import statistics
import sys
import time

from taskpool import TaskPool


def nothing(x: int) -> int:
    return x


def _once(backend: str, timeline: bool, jobs: int) -> float:
    """Seconds for ``jobs`` jobs, submitted one by one and waited for, once the workers are up."""
    with TaskPool(2, backend=backend, timeline=timeline) as pool:
        pool.submit(nothing, 0).result(timeout=60)
        began = time.perf_counter()
        futures = [pool.submit(nothing, i) for i in range(jobs)]
        for future in futures:
            future.result(timeout=60)
        return time.perf_counter() - began


def main(jobs: int, runs: int) -> None:
    for backend in ("process", "thread"):
        off: list[float] = []
        on: list[float] = []
        for _ in range(runs):
            off.append(_once(backend, False, jobs))
            on.append(_once(backend, True, jobs))
        a, b = statistics.median(off) / jobs, statistics.median(on) / jobs
        print(
            f"{backend:8} {jobs} jobs, median of {runs}: without {a * 1e6:.1f} µs/job, "
            f"with timeline {b * 1e6:.1f} µs/job (+{(b - a) * 1e6:.1f} µs, x{b / a:.2f})"
        )
    with TaskPool(2, backend="thread", timeline=True) as pool:
        for future in [pool.submit(nothing, i) for i in range(jobs)]:
            future.result(timeout=60)
    began = time.perf_counter()
    timeline = pool.timeline()
    taken = time.perf_counter()
    page = timeline.to_html()
    drawn = time.perf_counter()
    print(
        f"timeline of {jobs} jobs: taken in {(taken - began) * 1e3:.0f} ms, page of "
        f"{len(page) / 1e6:.1f} MB written in {(drawn - taken) * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 4000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 9,
    )
