"""The Ray contender: a local Ray instance with 2 CPUs, its tasks as the pool's jobs.

Runs in a child runner (`benchmarks._run`) only; `benchmarks._contenders` builds it on demand, so that
importing the registry imports no Ray. ``ray.init`` starts Ray's own processes (GCS server, raylet, an object
store in shared memory, worker processes) as this child's descendants; the harness kills them with the child's
process group if they outlive ``ray.shutdown``. Every address is the loopback one, and Ray's usage reporting
is switched off before Ray is imported: a benchmark sends nothing off the machine.

Large arguments go through Ray's object store as Ray does it by itself (an argument above its inline limit is
put there once per call); numpy results come back as read-only views of the store, without a copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from benchmarks import _jobs
from benchmarks._adapter import WAIT_S, WORKERS, Adapter, Fn, Where, expect_failure

__all__ = ["Ray"]


class Ray(Adapter):
    """``ray.init(num_cpus=2)`` once per child; each function wrapped once with ``ray.remote``."""

    def __init__(self) -> None:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        import ray

        self.ray: Any = ray
        self.remotes: dict[Fn, Any] = {}

    def open(self) -> None:
        self.ray.init(
            num_cpus=WORKERS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            _node_ip_address="127.0.0.1",
        )

    def close(self) -> None:
        self.ray.shutdown()

    def _remote(self, fn: Fn) -> Any:
        remote = self.remotes.get(fn)
        if remote is None:
            remote = self.remotes[fn] = self.ray.remote(fn)
        return remote

    def call(self, fn: Fn, *args: Any) -> Any:
        return self.ray.get(self._remote(fn).remote(*args), timeout=WAIT_S)

    def submit_all(self, fn: Fn, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        remote = self._remote(fn)
        return list(self.ray.get([remote.remote(*a) for a in args], timeout=WAIT_S))

    def crash_and_recover(self, stamp: str) -> tuple[str, Where]:
        # Ray reruns a task whose worker died (3 times by default): without retries the crash fails it.
        ref = self._remote(_jobs.crash).options(max_retries=0).remote(stamp)
        try:
            self.ray.get(ref, timeout=WAIT_S)
        except Exception as exc:
            name = expect_failure(exc, "WorkerCrashedError")
        else:
            name = expect_failure(None)
        return name, self.call(_jobs.where)
