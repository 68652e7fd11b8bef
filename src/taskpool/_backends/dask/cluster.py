"""The Dask backend's connection: the client, and the local cluster when the pool starts its own.

`Connection.open` starts a local cluster or connects to an existing scheduler, and refuses a cluster whose
packages differ from this client's. The rest are the calls into Dask that the backend makes around its jobs:
registering the initializer, cancelling tasks without waiting for the scheduler, killing the worker processes
of the local cluster, and closing, bounded in time.

Runs in the parent: `open` in the thread that makes the pool, `close` in the one that shuts it down, the rest
in any thread (they never wait for the scheduler, and hold no lock).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..._errors import DaskConnectionError, TaskpoolError

__all__ = ["CLOSE_TIMEOUT", "CONNECT_TIMEOUT", "DISTRIBUTION", "Connection"]

# distributed is an optional dependency, and its annotations are partial: it is handled as Any here.
try:
    distributed: Any = importlib.import_module("distributed")
    _dask_config: Any = importlib.import_module("dask.config")
except ImportError:  # pragma: no cover - exercised only without the extra installed
    distributed = None
    _dask_config = None

# taskpool's distribution name (pyproject.toml's `name`; the import name is taskpool), under which Dask looks up
# the version installed on the client and on each worker.
DISTRIBUTION = "taskpool-py"

# How long connecting to an existing scheduler may take before the pool gives up. Longer: tolerates a slow
# network or a scheduler that is still starting; shorter: a wrong address fails sooner.
CONNECT_TIMEOUT = 10.0
# Bounds on shutdown: closing the client, then the cluster that this backend started.
CLOSE_TIMEOUT = 5.0
CLUSTER_CLOSE_TIMEOUT = 10.0


class Connection:
    """A `distributed.Client`, and the `distributed.LocalCluster` behind it when the pool started one.

    Attributes:
        client: the client; left open at `close` when the caller gave it.
        cluster: the local cluster started here, or None for an existing cluster.
        address: the scheduler's address, for error messages.
    """

    def __init__(self, client: Any, cluster: Any, address: str, owns_client: bool) -> None:
        self.client = client
        self.cluster = cluster
        self.address = address
        self._owns_client = owns_client

    @classmethod
    def open(cls, workers: int, address: Any, connect_timeout: float) -> Connection:
        """Start a local cluster (``address`` None) or connect to one (the caller's thread).

        Args:
            workers: for a local cluster, how many single-threaded worker processes to start.
            address: None, a scheduler address ``"tcp://host:port"``, a cluster object, or a
                ``distributed.Client`` (which stays open after `close`).
            connect_timeout: seconds to wait for the scheduler at ``address``.

        Raises:
            ImportError: ``distributed`` is not installed.
            DaskConnectionError: the scheduler could not be reached in time.
            TaskpoolError: the cluster runs other package versions than this client.
        """
        if distributed is None:
            raise ImportError(
                "the dask backend needs the 'distributed' package: pip install 'taskpool-py[dask]'"
            )
        if address is None:
            return cls._start_local(workers)
        if isinstance(address, distributed.Client):
            connection = cls(address, None, str(address.scheduler.address), owns_client=False)
        else:
            where = str(getattr(address, "scheduler_address", address))
            try:
                client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise DaskConnectionError(
                    where, f"could not be reached within {connect_timeout:g} s ({exc})"
                ) from exc
            connection = cls(client, None, where, owns_client=True)
        connection._check_versions()
        return connection

    @classmethod
    def _start_local(cls, workers: int) -> Connection:
        with _dask_config.set(
            {
                # Fail a job at the first death of its worker, as the process backend does; the pool's
                # Retry(on_crash=True) decides about reruns, not Dask.
                # Dask reruns a task whose worker died up to allowed-failures times, and counts every task
                # the worker held, running or waiting. At 0, the backend decides instead (see the done
                # callback): the running job fails with WorkerCrashedError, the waiting ones are sent again.
                "distributed.scheduler.allowed-failures": 0,
            }
        ):
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # No dashboard, but the scheduler still serves HTTP (health, metrics): on a free port, as
                # its default 8787 is taken as soon as two pools run at once.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
        try:
            client = distributed.Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close(timeout=CLUSTER_CLOSE_TIMEOUT)
            raise
        return cls(client, cluster, str(cluster.scheduler_address), owns_client=True)

    def _check_versions(self) -> None:
        """Refuse a cluster whose packages differ from this client's where it matters (caller's thread).

        Dask's own check raises on mismatched required packages (Python, distributed, msgpack, cloudpickle,
        ...); a worker without taskpool, or with another version of it, could not run our jobs' envelopes.
        """
        try:
            versions = self.client.get_versions(check=True, packages=[DISTRIBUTION])
        except ValueError as exc:
            self._close_quietly()
            raise TaskpoolError(
                f"the Dask cluster at {self.address} runs package versions that differ from this client's: {exc}. "
                "Install the same versions on the client, the scheduler and every worker"
            ) from exc
        ours = versions["client"]["packages"].get(DISTRIBUTION)
        for worker, info in versions.get("workers", {}).items():
            theirs = info.get("packages", {}).get(DISTRIBUTION)
            if theirs != ours:
                self._close_quietly()
                raise TaskpoolError(
                    f"the Dask worker {worker} has taskpool {theirs or 'not installed'}, this client has {ours}; "
                    "install the same taskpool on every worker"
                )

    @property
    def local(self) -> bool:
        """Whether the cluster was started here (its workers run one job each, and may be killed)."""
        return self.cluster is not None

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the scheduler."""
        return bool(self.client.status == "running")

    def worker_threads(self) -> int:
        """How many jobs the cluster runs at once: its workers' threads (asks the scheduler)."""
        threads: int = sum(self.client.nthreads().values())
        return max(1, threads)

    def cancel(self, futures: list[Any]) -> None:
        """Cancel Dask futures without waiting for the scheduler (any thread).

        `Client.cancel` waits for the scheduler's answer, which would hold up the timer thread (and so other
        deadlines) while the scheduler is slow or gone; this queues the cancellation on the client's loop.
        """
        client = self.client

        async def cancel() -> None:
            with contextlib.suppress(Exception):
                await client.cancel(futures, asynchronous=True, reason="taskpool-stopped")

        with contextlib.suppress(Exception):
            client.loop.add_callback(cancel)

    def kill_workers(self, pids: Iterable[int]) -> None:
        """Kill those of ``pids`` that are worker processes of the cluster started here (any thread).

        Their nannies start new ones. Workers of an existing cluster are never killed.
        """
        for pid in set(pids) & set(self._local_worker_pids()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def _local_worker_pids(self) -> dict[int, Any]:
        """The worker processes of the cluster started here, by pid, with their nannies."""
        found: dict[int, Any] = {}
        for nanny in list(getattr(self.cluster, "workers", {}).values()):
            # A nanny (re)starting its worker has no process, or one without a pid yet.
            pid = getattr(getattr(getattr(nanny, "process", None), "process", None), "pid", None)
            if isinstance(pid, int):
                found[pid] = nanny
        return found

    def close(self, wait: bool, plugin_name: str | None) -> None:
        """Close the client, and the cluster started here (the thread that shuts the pool down; bounded).

        A client the caller gave stays open; the initializer plugin ``plugin_name`` is taken off its cluster.
        Without ``wait``, the local cluster's worker processes are killed: a running task holds its worker
        process until the task returns, and closing the cluster would wait for it.
        """
        client = self.client
        if self._owns_client:
            self._close_quietly()
        elif plugin_name is not None and self.connected:
            # A cluster we leave running must not keep running our initializer on the workers that join.
            _bounded(lambda: client.unregister_worker_plugin(plugin_name), CLOSE_TIMEOUT)
        if self.cluster is None:
            return
        if not wait:
            for pid, nanny in self._local_worker_pids().items():
                with contextlib.suppress(Exception):
                    nanny.close_gracefully(
                        reason="taskpool-terminate"
                    )  # so it starts no new worker
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.cluster.close(timeout=CLUSTER_CLOSE_TIMEOUT)

    def _close_quietly(self) -> None:
        """Close the client if it is ours (a client the caller gave stays open)."""
        if self._owns_client:
            with contextlib.suppress(Exception):
                self.client.close(timeout=CLOSE_TIMEOUT)


def _bounded(call: Callable[[], object], timeout: float) -> None:
    """Run a blocking Dask call on a daemon thread and wait at most ``timeout`` s for it (shutdown only)."""

    def target() -> None:
        with contextlib.suppress(Exception):
            call()

    thread = threading.Thread(target=target, name="taskpool-dask-close", daemon=True)
    thread.start()
    thread.join(timeout)
