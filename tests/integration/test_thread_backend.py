"""The thread backend runs as many jobs at once as it has workers, whenever the jobs arrive."""

from __future__ import annotations

import threading

from taskpool import TaskPool

TIMEOUT = 10


def test_a_burst_after_an_idle_spell_runs_on_every_worker() -> None:
    # Two jobs that can only finish together: with one job thread taking them in turn, the barrier breaks.
    # Each round starts from a fresh pool whose single job thread has just gone idle, the state in which a
    # burst of jobs used to leave the second thread unstarted.
    for _ in range(3):
        with TaskPool(workers=2, backend="thread") as pool:
            pool.submit(int).result(timeout=TIMEOUT)
            barrier = threading.Barrier(2, timeout=TIMEOUT)
            futures = [pool.submit(barrier.wait) for _ in range(2)]
            assert sorted(f.result(timeout=2 * TIMEOUT) for f in futures) == [0, 1]
