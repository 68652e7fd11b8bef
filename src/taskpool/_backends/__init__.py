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
) -> Backend:
    """Build the backend named ``name``.

    Raises:
        ValueError: no backend has that name, or an option does not apply to it (the message says which).
    """
    if start_method is not None and name != "process":
        raise ValueError(f"start_method applies to the process backend, not to {name!r}")
    if name == "process":
        from .process.backend import ProcessBackend

        return ProcessBackend(
            workers,
            start_method=start_method,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=max_tasks_per_worker,
            capture_output=capture_output,
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
