"""The backends that run a pool's jobs, and `make_backend`, which builds one by name.

Each backend implements `taskpool._core.backend.Backend` in a module of its own: ``process`` (worker
processes; the default), ``thread`` (threads of this process, for I/O-bound work), ``inline`` (the submitting
thread, for debugging) and ``dask`` (a Dask distributed cluster). Backends never import each other; a backend
is imported only when a pool asks for it. Runs in the thread that makes the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._core.backend import Backend

__all__ = ["BACKENDS", "make_backend"]

#: The backends by the name `TaskPool(backend=...)` takes, with what each is for.
BACKENDS = {
    "process": "CPU-bound work",
    "thread": "I/O-bound work",
    "inline": "debugging",
    "dask": "a Dask cluster",
}


def make_backend(
    name: str,
    workers: int,
    *,
    start_method: str | None,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    max_tasks_per_worker: int | None,
    capture_output: bool,
    address: Any = None,
    preload: tuple[str, ...] = (),
    thread_limit: int | None = None,
    max_memory_per_worker: int | None = None,
) -> Backend:
    """Build the backend named ``name``.

    Raises:
        ValueError: no backend has that name, or an option does not apply to it (the message says which).
    """
    if start_method is not None:
        import multiprocessing

        if start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"start_method {start_method!r} is not available here; choose one of "
                f"{multiprocessing.get_all_start_methods()}"
            )
        if name != "process":
            raise ValueError(f"start_method applies to the process backend, not to {name!r}")
    if preload and name != "process":
        raise ValueError(
            f"preload applies to the process backend, not to {name!r}: its jobs run where modules "
            "are imported already; import them before you make the pool"
        )
    if max_memory_per_worker is not None and name != "process":
        why = (
            "give the Dask workers a memory_limit instead (dask worker --memory-limit)"
            if name == "dask"
            else "its workers share this process's memory"
        )
        raise ValueError(
            f"max_memory_per_worker applies to the process backend, not to {name!r}: {why}"
        )
    if name == "process":
        _refuse_inside_a_worker()
        from .process.templates import start_early

        # The template imports its modules while this process imports the backend.
        start_early(start_method, preload)
        from .process.backend import ProcessBackend

        return ProcessBackend(
            workers,
            start_method=start_method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=max_tasks_per_worker,
            capture_output=capture_output,
            preload=preload,
            thread_limit=thread_limit,
            max_memory_per_worker=max_memory_per_worker,
        )
    if name == "thread":
        from .thread import ThreadBackend

        return ThreadBackend(workers, initializer=initializer, initargs=initargs)
    if name == "inline":
        from .inline import InlineBackend

        return InlineBackend(initializer=initializer, initargs=initargs)
    if name == "dask":
        from .dask.backend import DaskBackend

        return DaskBackend(workers, address=address, initializer=initializer, initargs=initargs)
    choices = ", ".join(f"{n!r} ({why})" for n, why in BACKENDS.items())
    raise ValueError(f"unknown backend {name!r}; choose one of {choices}")


def _refuse_inside_a_worker() -> None:
    """Refuse a process pool in a daemonic process (a pool's worker) before anything is allocated."""
    import multiprocessing

    process = multiprocessing.current_process()
    if process.daemon:
        from .._errors import TaskpoolError

        raise TaskpoolError(
            f"a process pool cannot start inside a worker process ({process.name}, pid {process.pid}): "
            "workers are daemonic, and daemonic processes cannot have children. Inside a job, use "
            "TaskPool(backend='thread'), or return the work to the parent and submit it there"
        )
