"""The referents: objects that live in the manager server process, behind taskpool's own proxy types.

Only the manager server process runs this code. Its stdlib server runs one thread per client connection (each
thread of each process that uses a proxy has its own), so two workers calling the same object run its methods in
two server threads at once. That is why `ManagedDict` and `ManagedCounter` hold a lock: ``increment`` and
``add`` read, add and write under it, so concurrent updates lose nothing. Each lock guards its own object only
and is held only around one update; no lock is held while a reply is sent.

The other shared types (list, lock, queue, ...) are the standard library's own classes; see `_server`.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping
from typing import Any


class ManagedDict(builtins.dict[Any, Any]):
    """The object behind a `SharedDict`; lives in the manager server process.

    Server threads (one per client connection) call its methods concurrently. Every method that writes holds
    ``_lock``, so ``increment`` (a read and a write) is atomic with respect to every other write, not only to
    other increments. Reads take no lock: a single dict lookup is already atomic.
    """

    __slots__ = ("_lock",)

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        super().__init__(data or {})
        self._lock = threading.Lock()

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._lock:
            super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        with self._lock:
            super().__delitem__(key)

    def __reduce__(self) -> tuple[type[builtins.dict[Any, Any]], tuple[builtins.dict[Any, Any]]]:
        # The lock cannot be pickled; a copy travels as a plain dict (used by a proxy's _getvalue()).
        return (builtins.dict, (builtins.dict(self),))

    def increment(self, key: Any, amount: Any = 1) -> Any:
        with self._lock:
            value = builtins.dict.get(self, key, 0) + amount
            super().__setitem__(key, value)
            return value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            return super().setdefault(key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        with self._lock:
            return super().pop(key, *default)

    def popitem(self) -> tuple[Any, Any]:
        with self._lock:
            return super().popitem()

    def update(self, data: Any = (), /, **kwargs: Any) -> None:
        with self._lock:
            super().update(data, **kwargs)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def copy(self) -> builtins.dict[Any, Any]:
        # A plain dict, because a ManagedDict would carry its lock to the client.
        return builtins.dict(self)

    def key_list(self) -> builtins.list[Any]:
        # One round trip for the keys: iterating a proxy goes over this snapshot.
        return builtins.list(self)


class ManagedCounter:
    """The object behind a `SharedCounter`; lives in the manager server process (called from server threads)."""

    def __init__(self, initial: int = 0) -> None:
        self._value = initial
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[ManagedCounter], tuple[int]]:
        return (ManagedCounter, (self._value,))

    def add(self, n: int = 1) -> int:
        with self._lock:
            self._value += n
            return self._value

    def get(self) -> int:
        return self._value

    def set(self, value: int) -> None:
        with self._lock:
            self._value = value


class ManagedValue:
    """The object behind a `SharedValue`; lives in the manager server process.

    ``typecode`` is kept for the same call signature as ``multiprocessing.Manager().Value``; like there, it is
    not enforced: the value is any picklable object.
    """

    def __init__(self, typecode: str, value: Any) -> None:
        self.typecode = typecode
        self._value = value

    def get(self) -> Any:
        return self._value

    def set(self, value: Any) -> None:
        self._value = value
