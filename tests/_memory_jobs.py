"""Job functions and helpers for the memory tests: at module level, so that spawn and forkserver workers import
them. Each runs in a worker process unless its docstring says otherwise.
"""

from __future__ import annotations

import os
from typing import Any


def make_bytes(n: int) -> bytes:
    """A result of ``n`` bytes (allocated zeroed: it costs the worker next to no memory until it is read)."""
    return bytes(n)


def length(data: Any) -> int:
    return len(data)


class Holder:
    """An object whose bound method is a job's function."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def scale(self, x: int) -> int:
        return x * self.factor


def scale(holder: Holder, x: int) -> int:
    return holder.scale(x)


#: How many `Counted` objects each process made and still holds, by pid (a forked worker inherits the
#: parent's, which must not count as its own).
LIVE: dict[int, int] = {}


class Counted:
    """A callable that counts its live copies in each process (rebuilt through ``__init__`` on unpickling)."""

    def __init__(self, tag: int) -> None:
        self.tag = tag
        self.pid = os.getpid()
        LIVE[self.pid] = LIVE.get(self.pid, 0) + 1

    def __reduce__(self) -> Any:
        return (Counted, (self.tag,))

    def __call__(self) -> int:
        return self.tag

    def __del__(self) -> None:
        LIVE[self.pid] -= 1


def live_counted() -> int:
    """How many `Counted` objects this worker made and holds."""
    return LIVE.get(os.getpid(), 0)


class Finalized:
    """Sets a shared event when it is freed (its ``__del__`` runs)."""

    def __init__(self, event: Any) -> None:
        self.event = event

    def __del__(self) -> None:
        self.event.set()


def finalized_result(argument: Finalized, event: Any) -> Finalized:
    """Takes a `Finalized` argument and returns a new one, made here, that sets ``event`` when freed."""
    assert isinstance(argument, Finalized)
    return Finalized(event)
