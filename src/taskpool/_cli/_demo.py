"""``taskpool demo``: the same CPU-bound jobs timed serially and on a `TaskPool`, then a callback.

`demo_command` runs in the main thread; `_pid_after` runs in the pool's worker processes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ._status import EXIT_OK

if TYPE_CHECKING:
    import argparse

__all__ = ["demo_command"]


def demo_command(args: argparse.Namespace, stdout: IO[str]) -> int:
    """``taskpool demo``: the same CPU-bound jobs serially, then on a pool; then a callback (main thread)."""
    from .. import TaskPool
    from .._pool.cpus import usable_cpus
    from ..examples import count_primes, prime_limit_for, whoami

    def say(text: str) -> None:
        print(text, file=stdout, flush=True)

    workers, jobs = args.workers, args.jobs
    cpus = usable_cpus()
    limit = prime_limit_for(args.seconds)
    say(f"{jobs} jobs of count_primes({limit}) (about {args.seconds:g} s each), {cpus} CPUs")

    start = time.perf_counter()
    serial = [count_primes(limit) for _ in range(jobs)]
    serial_time = time.perf_counter() - start
    say(f"  serial, in this process:  {serial_time:6.2f} s")

    start = time.perf_counter()
    with TaskPool(workers) as pool:
        workers = pool.workers  # --workers defaults to the CPU count, as for taskpool run
        # Start every worker before timing, by keeping them all busy at once: starting processes is a cost
        # paid once per pool, not per job, and it is shown apart.
        pids = {
            f.result(timeout=60) for f in [pool.submit(_pid_after, 0.1) for _ in range(workers)]
        }
        startup = time.perf_counter() - start
        start = time.perf_counter()
        parallel = pool.map(count_primes, [limit] * jobs, chunksize=1)
        parallel_time = time.perf_counter() - start
        if parallel != serial:
            raise RuntimeError(
                f"the pool computed {parallel}, the serial run {serial}: please report this"
            )
        speedup = serial_time / parallel_time
        say(
            f"  on TaskPool({workers}):          {parallel_time:6.2f} s   (starting {len(pids)} workers took "
            f"{startup:.2f} s, once)"
        )
        say(f"  speedup: {speedup:.2f}x (at most {min(workers, jobs, cpus)}x here)")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if load > cpus:
            # Other programs compete for the CPUs: the pool's workers get a share of them, not all.
            say(
                f"  (this machine is busy: load average {load:.1f} on {cpus} CPUs; expect less speedup than idle)"
            )

        say("")
        say(f"apply_async with a callback; this parent process is pid {os.getpid()}")
        seen: dict[str, Any] = {}

        def callback(where: dict[str, object]) -> None:
            # Runs in the parent, on the pool's event thread, once the job's result is back.
            seen.update(where)
            say(
                f"  callback ran in pid {os.getpid()} on thread {threading.current_thread().name!r}, "
                f"with the result of a job that ran in worker pid {where['pid']}"
            )

        pool.apply_async(whoami, callback=callback).get(timeout=60)
        parent = seen["ppid"]
        if parent == os.getpid():
            origin = "this process"
        else:
            # Under forkserver (the default where the platform has it) workers are forked from a small server process that
            # multiprocessing starts once, so that they inherit none of this process's threads.
            origin = f"{pool.start_method}'s server process, pid {parent}"
        say(f"  the job ran in pid {seen['pid']}, started from {origin}")
    return EXIT_OK


def _pid_after(delay: float) -> int:
    """This worker's pid after ``delay`` seconds (runs in a worker; keeps it busy while others start)."""
    time.sleep(delay)
    return os.getpid()
