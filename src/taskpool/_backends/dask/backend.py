"""`DaskBackend`: the parent's side of the Dask backend, which the pool drives through the Backend protocol.

It pickles each attempt's function and arguments, registers the attempt in its `Attempts` table, and hands it to
Dask as a task that runs `taskpool._backends.dask.worker.run`. What happens next is reported by the `Reporter`
(Dask's threads) and the `TimerThread` (deadlines). See the package's docstring for the threads and processes.

Runs in the parent: the constructor in the thread that makes the pool, `submit` / `stop` / `want_started` in any
thread, `shutdown` in the thread that shuts the pool down; a requeued attempt is sent from Dask's callback
thread. No lock is held while it calls into Dask or the sink.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..._core.reports import ReportKind
from ..._errors import DaskConnectionError, InitializerError, SerializationError
from ..._runtime.serialize import dumps, dumps_function
from .attempts import Attempt, Attempts
from .callbacks import Reporter
from .cluster import CLOSE_TIMEOUT, CONNECT_TIMEOUT, Connection
from .protocol import started_topic
from .timer import TimerThread
from .worker import InitializerPlugin, run

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._core.backlog import Backlog
    from ..._core.job import Job
    from ..._core.reports import Sink

__all__ = ["DaskBackend", "DaskConnectionError"]


class DaskBackend:
    """Runs a pool's jobs on a Dask cluster: a local one it starts, or an existing one it connects to.

    Constructed by the pool (in the caller's thread); raises at once when the cluster cannot be started or
    reached, so `TaskPool(backend="dask", address=...)` fails fast on a wrong address.

    Args:
        workers: for a local cluster, how many single-threaded worker processes to start. Ignored for an
            existing cluster, whose worker threads are counted instead.
        address: None (start a local cluster on 127.0.0.1), a scheduler address ``"tcp://host:port"``, or a
            ``distributed.Client`` (which stays open after the pool shuts down).
        initializer: run once in every worker (also workers that join later) with ``initargs``.
        connect_timeout: seconds to wait for the scheduler at ``address``.
    """

    name = "dask"
    supports_timeout = True
    supports_stop = True
    supports_backup = False
    start_method: str | None = None
    shared_state_unavailable: str | None = (
        "pool.shared is not available on the dask backend: a Manager process on this machine is out of "
        "reach of remote workers. Use distributed.Lock, distributed.Variable or distributed.Queue instead"
    )

    def share(self, obj: Any) -> Any:
        """Not on Dask: its own ``Client.scatter`` is the way to send data once to remote workers."""
        raise NotImplementedError(
            "pool.share is not available on the dask backend: use dask's own distributed.Client.scatter(obj, "
            "broadcast=True) and pass the future it returns as a job argument"
        )

    def shared_array(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Not on Dask: remote workers share no memory with this process."""
        raise NotImplementedError(
            "pool.shared.array is not available on the dask backend: remote workers share no memory with "
            "this process; return results from jobs instead"
        )

    def __init__(
        self,
        workers: int,
        *,
        address: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._connection = connection = Connection.open(workers, address, connect_timeout)
        self._client = connection.client
        self._token = uuid.uuid4().hex
        self._topic = started_topic(self._token)
        # Workers say when they begin a job, so that a crash is blamed on the running job only (see the done
        # callback), and for STARTED reports and timeouts. Costs one small message per job through the scheduler.
        self._announce = True
        self.workers = workers if connection.local else connection.worker_threads()

        self._attempts = Attempts()
        self._reporter = Reporter(self._attempts, connection, self._send)
        self._timer: TimerThread | None = None
        # (function, its pickle): map sends one function often.
        self._fn_cache: tuple[Any, bytes] | None = None

        self._init_error: InitializerError | None = None
        self._plugin_name: str | None = None
        if initializer is not None:
            self._plugin_name = f"taskpool-init-{self._token}"
            try:
                self._client.register_plugin(
                    InitializerPlugin(self._token, initializer, initargs), name=self._plugin_name
                )
            except Exception as exc:
                self._init_error = InitializerError(f"{type(exc).__name__}: {exc}")
        self._client.subscribe_topic(self._topic, self._reporter.on_started)

    # -- the Backend protocol (caller threads) ------------------------------------------------------------
    def start(self, sink: Sink, backlog: Backlog | None = None) -> None:
        """Begin reporting to ``sink``; starts the timer thread (runs in the pool's constructor thread)."""
        self._reporter.sink = sink
        self._timer = TimerThread(self._attempts, self._reporter.emit, self._halt)
        self._timer.start()
        if self._init_error is not None:
            self._attempts.defer(self._reporter.broken(self._init_error))

    def want_started(self, enabled: bool) -> None:
        """Whether to report STARTED from now on (any thread); workers announce every job anyway."""
        self._reporter.want_started = enabled

    def submit(self, job: Job) -> None:
        """Send one attempt of ``job`` to Dask (any thread; does not wait for the job).

        The function and arguments are pickled here, so a part that does not pickle fails this job with a
        `SerializationError` that names it, and closures and lambdas go by value (cloudpickle).
        """
        if self._attempts.closed:
            raise RuntimeError("the dask backend is shut down")
        if job.future.cancelled():
            self._attempts.defer([(ReportKind.SKIPPED, job, None, None, None, None)])
            return
        if self._init_error is not None:
            self._attempts.defer([(ReportKind.FAILED, job, None, None, None, self._init_error)])
            return
        try:
            payload = job.payload
            if payload is None:
                payload = job.payload = (
                    self._pickle_function(job),
                    dumps((job.args, job.kwargs), "arguments", "parent", job.name),
                )
        except SerializationError as exc:
            self._attempts.defer([(ReportKind.FAILED, job, None, None, None, exc)])
            return
        self._send(job, payload, 0)

    def stop(self, job: Job) -> bool:
        """Stop ``job``: its future ends STOPPED at once and its Dask task is cancelled (any thread).

        A running job's worker is killed on a cluster started here; on an existing cluster the task runs to
        its end there (Dask cannot interrupt it) and its result is dropped.
        """
        attempt = self._attempts.of_job(job)
        if attempt is None or self._attempts.settle(attempt.key) is None:
            return False
        self._reporter.emit([(ReportKind.STOPPED, job, attempt.worker, attempt.pid, None, None)])
        self._halt([attempt])
        return True

    def withdraw(self, upto: int) -> None:
        """Cancel the Dask tasks of jobs up to id ``upto`` that were cancelled before they began (caller thread).

        A job's future stays pending until its outcome on this backend, so the pool's `cancel` already ended
        the futures; this spares the cluster the work, and reports each job skipped.
        """
        attempts = self._attempts.settle_cancelled(upto)
        if attempts:
            self._reporter.emit(
                [(ReportKind.SKIPPED, a.job, None, None, None, None) for a in attempts]
            )
            self._halt(attempts)

    def shutdown(self, wait: bool) -> None:
        """Close the client, and the cluster if this backend started it (caller thread; bounded in time).

        Without ``wait``, jobs still on Dask are cancelled and get no report.
        """
        leftover = self._attempts.close()
        if leftover is None:
            return
        if self._timer is not None:
            self._timer.join(timeout=CLOSE_TIMEOUT)
        connection = self._connection
        if leftover and connection.connected:
            connection.cancel(leftover)
        with contextlib.suppress(Exception):
            self._client.unsubscribe_topic(self._topic)
        connection.close(wait, self._plugin_name)

    # -- sending ------------------------------------------------------------------------------------------
    def _send(self, job: Job, payload: tuple[bytes, bytes], requeues: int) -> None:
        """Hand one attempt to Dask (a caller thread, or Dask's callback thread for a requeue)."""
        client = self._client
        if client.status != "running":
            error = DaskConnectionError(
                self._connection.address, f"is not connected (client {client.status})", job.name
            )
            self._attempts.defer([(ReportKind.FAILED, job, None, None, None, error)])
            return
        key = f"{job.name}-{job.id}-{job.attempt}-{uuid.uuid4().hex}"
        attempt = Attempt(job, key, payload, requeues)
        # Registered before Dask knows the key, so a STARTED event can never arrive for an unknown key.
        if not self._attempts.add(attempt):
            return
        try:
            future = client.submit(
                run,
                self._token,
                key,
                payload[0],
                payload[1],
                job.kind,
                job.name,
                job.id,
                self._announce,
                logging.getLogger().getEffectiveLevel(),
                job.seed,
                key=key,
                pure=False,
            )
        except Exception as exc:
            if self._attempts.settle(key) is not None:
                self._attempts.defer([(ReportKind.FAILED, job, None, None, None, exc)])
            return
        attempt.future = future
        if not self._attempts.is_live(
            key
        ):  # timed out or stopped before the future existed: cancel it now
            self._connection.cancel([future])
            return
        future.add_done_callback(lambda fut, key=key: self._reporter.on_done(key, fut))

    def _pickle_function(self, job: Job) -> bytes:
        cached = self._fn_cache
        if cached is not None and cached[0] is job.fn:
            return cached[1]
        data = dumps_function(job.fn, job.name)
        self._fn_cache = (job.fn, data)
        return data

    def _halt(self, attempts: list[Attempt]) -> None:
        """Cancel attempts that timed out or were stopped, and kill the workers running them (any thread).

        Only the worker processes of a cluster started here are killed (their nannies start new ones): each
        runs one job at a time, so nothing else is lost. On an existing cluster a running task runs on.
        """
        self._connection.cancel([a.future for a in attempts if a.future is not None])
        pids = {a.pid for a in attempts if a.pid is not None}
        if pids and self._connection.local:
            self._connection.kill_workers(pids)
