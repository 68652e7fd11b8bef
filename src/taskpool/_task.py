"""`@task`: a function made poolable. Calling it runs it here; ``.submit`` and ``.map`` run it on a pool.

Which pool: the innermost ``with TaskPool(...)`` block that is active in the calling thread (or asyncio
context), else a default pool made on first use (process backend, one worker per CPU) that is stopped when the
interpreter exits. The active pools are a `contextvars.ContextVar` stack that `TaskPool.__enter__` and
``__exit__`` push and pop (`enter_pool` and `exit_pool`), so a block in one thread does not redirect another
thread's jobs.

Pickling: ``@task`` replaces the function in its module with a `Task`, so ``module.qualname`` no longer names
the function and plain pickle refuses the bare function ("not the same object"). The pool is therefore given
the `Task` itself: it pickles by reference to its module attribute (`Task.__reduce__`), and the worker calls
it, which calls the function. Tasks that cannot be found by reference (defined in ``__main__`` or inside a
function) travel by value through cloudpickle, as plain functions do.

Threads: `Task` objects are immutable after construction, so any thread may use one. ``_default_lock`` guards
the creation and replacement of the default pool.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from ._core.job import UNSET, JobOptions, Unset
from ._runtime.hooks import register_once

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._core.backup import Median
    from ._core.future import JobFuture
    from ._core.retry import Retry
    from ._pool.pool import TaskPool
    from ._pool.submitter import PoolView

__all__ = ["Task", "active_pool", "shutdown_default_pool", "task"]

P = ParamSpec("P")
R = TypeVar("R")

_default_pool: TaskPool | None = None
_default_pid = (
    0  # the process that made _default_pool: a forked child must not use its parent's pool
)
_default_lock = threading.Lock()


def active_pool() -> TaskPool:
    """The pool a task's ``submit`` uses now: the innermost active ``with`` block's, or the default pool."""
    from ._pool.active import innermost_pool

    pool = innermost_pool()
    return pool if pool is not None else _get_default_pool()


def _get_default_pool() -> TaskPool:
    global _default_pool, _default_pid
    pool = _default_pool
    if pool is not None and _default_pid == os.getpid() and pool.state.value == "running":
        return pool
    with _default_lock:
        pool = _default_pool
        if pool is None or _default_pid != os.getpid() or pool.state.value != "running":
            from ._pool.pool import TaskPool

            pool = TaskPool()
            _default_pool, _default_pid = pool, os.getpid()
            # Registered after the pool's own exit hook, so it runs first (atexit is last-in first-out).
            register_once("default pool", at_exit=functools.partial(shutdown_default_pool, False))
    return pool


def shutdown_default_pool(wait: bool = True) -> None:
    """Stop the default pool, if one was made; the next ``submit`` outside a pool block makes a new one.

    Args:
        wait: let submitted jobs finish first (close and join); False cancels them and kills the workers
            (what happens at interpreter exit, so exit never waits for jobs nobody waited for).
    """
    global _default_pool
    with _default_lock:
        pool, _default_pool = _default_pool, None
    if pool is None or _default_pid != os.getpid():
        return
    if wait:
        pool.close()
        pool.join()
    else:
        pool.terminate()


def _lookup(module: str, qualname: str) -> Any:
    """Find ``module.qualname`` (runs where a task is unpickled, usually a worker)."""
    obj: Any = sys.modules.get(module)
    if obj is None:
        import importlib

        obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _find(fn: Callable[..., Any]) -> Task[Any, Any] | None:
    """The module-level `Task` that wraps ``fn``, if ``fn``'s module and qualified name lead to one."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        return None
    try:
        found = _lookup(module, qualname)
    except Exception:
        return None
    return found if isinstance(found, Task) and found.__wrapped__ is fn else None


def _rebuild(fn: Callable[..., Any], given: dict[str, Any]) -> Task[Any, Any]:
    return Task(fn, **given)


class Task(Generic[P, R]):
    """A function made poolable by `task`. Calling it runs the function here, in the calling thread.

    Attributes:
        __wrapped__: the decorated function.
    """

    __wrapped__: Callable[P, R]
    __name__: str
    __qualname__: str

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        timeout: float | Unset | None = UNSET,
        retry: Retry | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        backup_after: float | Median | Unset | None = UNSET,
    ) -> None:
        if isinstance(fn, Task):
            fn = fn.__wrapped__
        if not callable(fn):
            raise TypeError(f"@task decorates a function, not {fn!r}")
        # Validated now, so a bad option fails at the decorator, not at the first submit.
        given: dict[str, Any] = {
            k: v
            for k, v in (
                ("timeout", timeout),
                ("retry", retry),
                ("name", name),
                ("backup_after", backup_after),
            )
            if v is not UNSET
        }
        JobOptions().merge(**given)
        self._given: dict[str, Any] = given
        functools.update_wrapper(self, fn)

    @property
    def _root(self) -> Task[P, R]:
        """The module-level `Task` of the same function (what workers get, so it pickles by reference)."""
        root: Task[P, R] | None = self.__dict__.get("_root_cache")
        if root is None:
            # Looked up on first use, not in __init__: the decorator runs before the module binds the name.
            root = _find(self.__wrapped__)
            if root is None:
                return self
            self.__dict__["_root_cache"] = root
        return root

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here, in the calling thread (in a worker, this is how a job runs)."""
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self._given.items())
        return f"<Task {self.__wrapped__.__module__}.{self.__wrapped__.__qualname__}{options}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        root = _find(self.__wrapped__)
        if root is self:
            return self.__wrapped__.__qualname__  # pickle writes a reference to module.qualname
        if root is not None:
            # A Task made by `options`: the worker only needs something that calls the function, and the
            # module-level Task does; the options matter only in the parent.
            return (_lookup, (self.__wrapped__.__module__, self.__wrapped__.__qualname__))
        return (_rebuild, (self.__wrapped__, self._given))

    def _pool(self) -> PoolView:
        return active_pool().options(**self._given)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> JobFuture[R]:
        """Run ``fn(*args, **kwargs)`` on the active pool and return its future at once (caller's thread).

        Raises:
            PoolClosedError: the active pool is closed.
            ValueError: an option this task carries cannot be enforced by the active pool's backend.
        """
        return self._pool().submit(self._root, *args, **kwargs)

    def map(
        self,
        items: Iterable[Any],
        chunksize: int | None = None,
        progress: bool | str | Mapping[str, Any] = False,
    ) -> list[R]:
        """Run the function on every item on the active pool; results in input order (see `TaskPool.map`).

        The items' type is not checked statically (a ParamSpec cannot be narrowed to one parameter).
        """
        return self._pool().map(self._root, items, chunksize=chunksize, progress=progress)

    def options(
        self,
        *,
        timeout: float | Unset | None = UNSET,
        retry: Retry | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        backup_after: float | Median | Unset | None = UNSET,
    ) -> Task[P, R]:
        """This task with other job options (the ones not given are kept); the task itself is unchanged."""
        given = dict(self._given)
        options = (
            ("timeout", timeout),
            ("retry", retry),
            ("name", name),
            ("backup_after", backup_after),
        )
        for key, value in options:
            if value is not UNSET:
                given[key] = value
        return Task(self.__wrapped__, **given)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    timeout: float | None = ...,
    retry: Retry | None = ...,
    name: str | None = ...,
    backup_after: float | Median | None = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    timeout: float | Unset | None = UNSET,
    retry: Retry | Unset | None = UNSET,
    name: str | Unset | None = UNSET,
    backup_after: float | Median | Unset | None = UNSET,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function poolable: ``@task`` or ``@task(timeout=30, retry=Retry(attempts=3), name="fetch")``.

    The decorated function still runs locally when called; ``.submit(...)`` runs it on the innermost active
    pool (a ``with TaskPool()`` block) or on a default pool made on first use, ``.map(items)`` maps it, and
    ``.options(...)`` returns it with other job options. Decorate functions at module level, so workers can
    import them.

    Args:
        timeout: the per-job timeout in seconds (None: none, even if the pool has a default).
        retry: the `Retry` policy of its jobs (None: no retries, even if the pool has a default).
        name: the jobs' name in events, logs and errors (default: the function's qualified name).
        backup_after: seconds, or a `Median` multiple, after which a running job gets a backup copy on
            another worker (process backend; declares the function idempotent). None: no backups.

    Raises:
        TypeError, ValueError: an option is of the wrong type or out of range.
    """
    if fn is not None:
        return Task(fn, timeout=timeout, retry=retry, name=name, backup_after=backup_after)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task(f, timeout=timeout, retry=retry, name=name, backup_after=backup_after)

    # Fail at the decorator line, not later.
    JobOptions().merge(timeout=timeout, retry=retry, name=name, backup_after=backup_after)
    return decorate
