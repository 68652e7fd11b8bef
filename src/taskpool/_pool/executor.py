"""`ExecutorView`: a `TaskPool` seen as a `concurrent.futures.Executor` (caller threads)."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from .pool import TaskPool

__all__ = ["ExecutorView"]

P = ParamSpec("P")
R = TypeVar("R")


class ExecutorView(cf.Executor):
    """A `TaskPool` as an Executor; ``shutdown(wait=True)`` closes and joins the pool."""

    def __init__(self, pool: TaskPool) -> None:
        self._pool = pool

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> cf.Future[R]:
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)
