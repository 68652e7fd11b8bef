"""`spawn`: one call in one dedicated process, with the same future, errors and events as a pool job.

``taskpool.spawn(fn, *args, **kwargs)`` returns a `JobFuture` at once. Options go through
``taskpool.spawn.options(timeout=..., start_method=..., name=..., retry=..., on=...)``, which returns another
`Spawner`; keeping them out of ``__call__`` means they can never clash with the function's own keywords.

How it works: no new worker code. Each call makes a private `TaskPool` of one process worker that retires after
one job (``max_tasks_per_worker=1``), submits the job to it, and closes it at once. So the pool machinery gives
spawn everything a pool job has: the remote traceback as ``__cause__``, `WorkerCrashedError` with the exit code
or signal, `JobTimeoutError` (the worker is killed), ``future.stop()`` (the worker is killed, the future ends
cancelled), retries decided in the parent (each attempt in a fresh process), events, and the forwarding of the
child's log records and printed lines to the parent.

Pickling happens here, in the caller's thread, before anything starts: the function (`dumps_function`) and the
arguments (`dumps`) are pickled once, and the job the private pool runs is `_call_pickled` with those two byte
strings. An unpicklable function or argument raises `SerializationError` from ``spawn(...)`` itself, with no
process and no thread started, and nothing is pickled twice (a large argument costs one pickling, not two).

Shutting the private pool down. Its workers and threads must end once the job has, and ``join()`` is the clean
way to end a pool (the worker exits by itself; the scheduler and event threads finish what is queued). But
``join()`` cannot run where the future completes: done-callbacks run on the pool's own event thread, and
``join()`` waits for that thread to finish. So the future's first done-callback starts a short-lived *reaper*
thread (``taskpool-spawn-reaper``) that calls ``join()`` and ends; the event thread never waits for anything.

Threads and processes of one spawn::

    caller thread     spawn(): pickle, make the private pool, submit, close   -> the JobFuture
    scheduler thread  the process backend's: starts the child, sends the job, watches it (deadline, death)
    event thread      the pool's: completes the future, runs done-callbacks and ``on=`` handlers, emits the
                      child's log records and prints
    reaper thread     after the future is done: ``pool.join()`` (the child exits, both threads above end)
    child process     a pool worker: runs the one job, then exits

Until the reaper has joined it, the private pool is kept alive by the module's ``_live`` set, so a spawn whose
future nobody keeps still runs to the end and cleans up. ``_live_lock`` guards that set only; no lock is held
while user code runs. At interpreter exit, taskpool's exit hook terminates pools still running, spawns included.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._core.events import EVENT_KINDS, Event, EventKind
from ._core.job import UNSET, Unset, check_timeout, job_name
from ._core.ledger import PoolState
from ._core.retry import Retry
from ._pool.pool import TaskPool
from ._runtime.serialize import dumps, dumps_function, loads_checked

if TYPE_CHECKING:
    from ._core.future import JobFuture

__all__ = ["Spawner", "spawn"]

P = ParamSpec("P")
R = TypeVar("R")

Handler = Callable[[Event], object]

# Private pools whose job is not finished and joined yet: this keeps them alive when nobody holds the future.
_live: set[TaskPool] = set()
_live_lock = threading.Lock()


def _call_pickled(fn_data: bytes, args_data: bytes, name: str) -> Any:
    """Unpickle the function and its arguments, and call it (runs in the child process, main thread).

    Raises:
        SerializationError: the function or the arguments do not unpickle in the child.
    """
    fn = loads_checked(fn_data, "function", "worker", name)
    args, kwargs = loads_checked(args_data, "arguments", "worker", name)
    return fn(*args, **kwargs)


def _reap(pool: TaskPool) -> None:
    """Join a finished spawn's private pool, then let it go (runs on the reaper thread)."""
    try:
        pool.join()
    finally:
        with _live_lock:
            _live.discard(pool)


def _start_reaper(pool: TaskPool) -> None:
    """Start the reaper of ``pool`` (runs where the future completes: the event thread, or a caller's thread
    for a future cancelled before its job started)."""
    if (
        pool.state is PoolState.TERMINATED
    ):  # terminate() (the exit hook) already shut it down; nothing to join
        with _live_lock:
            _live.discard(pool)
        return
    reaper = threading.Thread(target=_reap, args=(pool,), name="taskpool-spawn-reaper", daemon=True)
    try:
        reaper.start()
    except (
        RuntimeError
    ):  # the interpreter is shutting down: its exit hook terminates the pool instead
        with _live_lock:
            _live.discard(pool)


def _check_start_method(start_method: str | None) -> str | None:
    if start_method is not None and start_method not in multiprocessing.get_all_start_methods():
        raise ValueError(
            f"start_method {start_method!r} is not available here; choose one of "
            f"{multiprocessing.get_all_start_methods()} (or None for the default)"
        )
    return start_method


def _check_handlers(
    on: Mapping[EventKind, Handler] | None,
) -> tuple[tuple[EventKind, Handler], ...]:
    if on is None:
        return ()
    if not isinstance(on, Mapping):
        raise TypeError(
            f"on must be a mapping of event kind to handler, like {{'job_failed': handler}}, not {on!r}"
        )
    for kind, handler in on.items():
        if kind not in EVENT_KINDS:
            raise ValueError(
                f"unknown event kind {kind!r}; the kinds are: {', '.join(sorted(EVENT_KINDS))}"
            )
        if not callable(handler):
            raise TypeError(f"the handler for {kind!r} must be callable, not {handler!r}")
    return tuple(on.items())


class Spawner:
    """Runs one call in one dedicated process; `taskpool.spawn` is the one with default options.

    ``spawn(fn, *args, **kwargs)`` starts a process for ``fn(*args, **kwargs)`` and returns its `JobFuture` at
    once. The future ends with the function's result; or with its own exception, the child's traceback as
    ``__cause__``; or `WorkerCrashedError` if the process dies (with its exit code or signal); or
    `JobTimeoutError` past the timeout (the process is killed); or cancelled after ``future.stop()`` (the process
    is killed). The child's log records and printed lines reach the parent as a pool worker's do.

    Instances are immutable; `options` returns a new one. Any thread may use them.
    """

    __slots__ = ("_name", "_on", "_retry", "_start_method", "_timeout")

    def __init__(
        self,
        *,
        timeout: float | None = None,
        start_method: str | None = None,
        name: str | None = None,
        retry: Retry | None = None,
        on: Mapping[EventKind, Handler] | None = None,
    ) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, not {name!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry must be a taskpool.Retry or None, not {retry!r}")
        self._timeout = check_timeout(timeout)
        self._start_method = _check_start_method(start_method)
        self._name = name
        self._retry = retry
        self._on = _check_handlers(on)

    def __repr__(self) -> str:
        shown = [
            f"{field}={value!r}"
            for field, value in (
                ("timeout", self._timeout),
                ("start_method", self._start_method),
                ("name", self._name),
                ("retry", self._retry),
                ("on", dict(self._on) or None),
            )
            if value is not None
        ]
        return f"<taskpool.spawn{' with ' + ', '.join(shown) if shown else ''}>"

    def options(
        self,
        *,
        timeout: float | Unset | None = UNSET,
        start_method: str | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        retry: Retry | Unset | None = UNSET,
        on: Mapping[EventKind, Handler] | Unset | None = UNSET,
    ) -> Spawner:
        """A spawner with these options; options not given keep their value here (runs in the caller's thread).

        Args:
            timeout: seconds the function may run (counted from when it starts in the child, so process
                start-up is not included) before the process is killed and the future fails with
                `JobTimeoutError`. None: no limit.
            start_method: ``"forkserver"`` (the default where the platform has it), ``"spawn"`` or ``"fork"``, as for `TaskPool`.
            name: the job's name in events, log records and errors (default: the function's qualified name).
            retry: a `Retry` policy, decided in the parent; each attempt runs in a fresh process.
            on: event handlers by kind, ``{"job_started": handler, ...}``, as `TaskPool.on` takes them. They run
                in the parent on the spawn's event thread; ``worker_started`` and ``worker_exited`` carry the
                child's pid and exit code (``worker_exited`` comes after the future is done).

        Raises:
            ValueError: a value is out of range or an event kind is unknown (the message lists the kinds).
            TypeError: a value has the wrong type.
        """
        return Spawner(
            timeout=self._timeout if timeout is UNSET else timeout,
            start_method=self._start_method if start_method is UNSET else start_method,
            name=self._name if name is UNSET else name,
            retry=self._retry if retry is UNSET else retry,
            on=dict(self._on) if on is UNSET else on,
        )

    def __call__(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> JobFuture[R]:
        """Start one process for ``fn(*args, **kwargs)`` and return its future (runs in the caller's thread).

        The function and the arguments are pickled here first (lambdas and closures by value), so bad input
        fails now, before any process starts.

        Raises:
            TypeError: ``fn`` is not callable.
            SerializationError: the function or an argument does not pickle (its ``part`` says which).
        """
        if not callable(fn):
            raise TypeError(f"spawn() needs a callable as its first argument, not {fn!r}")
        name = self._name if self._name is not None else job_name(fn)
        fn_data = dumps_function(fn, name)
        args_data = dumps((args, kwargs), "arguments", "parent", name)
        pool = TaskPool(
            1,
            start_method=self._start_method,
            max_tasks_per_worker=1,
            timeout=self._timeout,
            retry=self._retry,
        )
        with _live_lock:
            _live.add(pool)
        try:
            for kind, handler in self._on:
                pool.on(kind, handler)
            future: JobFuture[R] = pool.options(name=name).submit(
                _call_pickled, fn_data, args_data, name
            )
            pool.close()  # the job still runs; closing now makes join() (in the reaper) wait for just this one
        except BaseException:
            pool.terminate()
            with _live_lock:
                _live.discard(pool)
            raise
        future.add_done_callback(lambda _: _start_reaper(pool))
        return future


spawn = Spawner()
"""Run one call in one dedicated process: ``taskpool.spawn(fn, *args, **kwargs) -> JobFuture``.

Set options with ``taskpool.spawn.options(timeout=..., start_method=..., name=..., retry=..., on=...)``.
"""
