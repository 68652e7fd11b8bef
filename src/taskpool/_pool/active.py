"""Which pool is active: the pools whose ``with`` block the current context is in, innermost last.

`TaskPool.__enter__` and ``__exit__`` push and pop; ``@task`` functions submit to the innermost. Runs in the
caller's thread; a context variable, so threads and asyncio tasks each see their own stack.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pool import TaskPool

__all__ = ["enter_pool", "exit_pool", "innermost_pool"]

# A tuple, so a context that copies the stack (a new task, a new thread's context) can never change the caller's.
_active: contextvars.ContextVar[tuple[TaskPool, ...]] = contextvars.ContextVar(
    "taskpool_active_pools", default=()
)


def enter_pool(pool: TaskPool) -> None:
    """Make ``pool`` the innermost active pool of this context."""
    _active.set((*_active.get(), pool))


def exit_pool(pool: TaskPool) -> None:
    """Undo `enter_pool` for ``pool``.

    Removes the innermost entry of ``pool`` rather than resetting a token, so a pool entered in one context
    and left in another (an unusual but legal pattern) does not raise here.
    """
    stack = _active.get()
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is pool:
            _active.set(stack[:i] + stack[i + 1 :])
            return


def innermost_pool() -> TaskPool | None:
    """The innermost active pool of this context, or None outside every ``with TaskPool()`` block."""
    stack = _active.get()
    return stack[-1] if stack else None


def active_stack() -> tuple[TaskPool, ...]:
    """Every active pool of this context, innermost last."""
    return _active.get()
