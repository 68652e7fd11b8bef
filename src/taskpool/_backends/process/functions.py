"""The parent's cache of pickled job functions: each function is pickled once and sent to a worker once, under
a key, for as long as someone still uses it.

The cache is a bounded LRU (`FUNCTION_CACHE_SIZE` entries) that holds its functions weakly where it can: a
function that nobody else references any more leaves the cache when it is freed, and a bound method keeps
neither its ``__self__`` nor its ``__func__`` alive (it is found again by the identity of both, since every
``obj.method`` makes a new bound method). Callables that take no weak reference are held strongly, bounded by
the LRU. Every key that leaves the cache is queued in `FunctionCache.dropped`, for the scheduler to tell the
workers that hold it to forget it; workers also forget their least recently used functions beyond
`FUNCTION_CACHE_SIZE` (`taskpool._backends.process.lifecycle`), so their memory is bounded too.

A job carries the `Pickled` function it names, so a key that leaves the cache while a job that names it is
still queued is sent again to a worker that does not have it.

Threads: `FunctionCache.get` runs in caller threads without a lock (it is on the path of every submit);
`FunctionCache.add` takes ``_lock``; the weak references' callbacks run in whichever thread frees a function,
and take no lock (they may run inside `add`, while it holds it): they only remove the entry of the object
that is being freed, which no other thread can look up or add any more. The scheduler thread drains
``dropped`` (a deque: append and popleft are atomic).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import types
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, NamedTuple

from ..._runtime.serialize import dumps_function

__all__ = ["FUNCTION_CACHE_SIZE", "FunctionCache", "Pickled", "drain"]

#: How many distinct functions the parent keeps pickled, and each worker keeps unpickled. More: a program
#: that cycles through many functions pickles and sends them less often; fewer: less memory held in the
#: parent and in every worker.
FUNCTION_CACHE_SIZE = 128

_MethodType = types.MethodType


class Pickled(NamedTuple):
    """A function as a job carries it: its key in the cache and workers, and its pickle."""

    key: int
    data: bytes


class _Strong:
    """Holds a callable that takes no weak reference; called like a weak reference."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


def _parts(fn: Any) -> tuple[Any, ...]:
    """What identifies a function: itself, or a bound method's function and object."""
    if type(fn) is _MethodType:
        return (fn.__func__, fn.__self__)
    return (fn,)


class _Entry:
    __slots__ = ("pickled", "refs")

    def __init__(self, pickled: Pickled, refs: tuple[Callable[[], Any], ...]) -> None:
        self.pickled = pickled
        self.refs = refs


class FunctionCache:
    """The pickled functions of one backend, by identity; see the module docstring."""

    def __init__(self, size: int = FUNCTION_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Any, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        #: The keys that left the cache, for the workers to forget (drained by the scheduler thread).
        self.dropped: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, fn: Any) -> Pickled | None:
        """The pickled ``fn`` if it is cached (any thread, no lock: the path of every submit)."""
        if type(fn) is _MethodType:
            func, obj = fn.__func__, fn.__self__
            ident: Any = (id(func), id(obj))
            entry = self._entries.get(ident)
            if entry is None or entry.refs[0]() is not func or entry.refs[1]() is not obj:
                return None
        else:
            ident = id(fn)
            entry = self._entries.get(ident)
            if entry is None or entry.refs[0]() is not fn:
                return None
        with contextlib.suppress(KeyError):  # dropped meanwhile: it is still the right pickle
            self._entries.move_to_end(ident)
        return entry.pickled

    def add(self, fn: Any, name: str | None) -> Pickled:
        """Pickle ``fn`` and cache it under a new key (any thread).

        Raises:
            SerializationError: ``fn`` does not pickle.
        """
        data = dumps_function(fn, name)
        parts = _parts(fn)
        ident = tuple(id(p) for p in parts) if len(parts) > 1 else id(fn)
        with self._lock:
            pickled = Pickled(next(self._keys), data)
            forget = _forgetter(weakref.ref(self), ident)
            replaced = self._entries.pop(ident, None)  # two threads added ``fn`` at once
            if replaced is not None:
                self.dropped.append(replaced.pickled.key)
            self._entries[ident] = _Entry(pickled, tuple(_ref(p, forget) for p in parts))
            while len(self._entries) > self.size:
                _, old = self._entries.popitem(last=False)
                self.dropped.append(old.pickled.key)
        return pickled

    def _forget(self, ident: Any, ref: Any) -> None:
        """A cached object was freed (any thread): drop its entry, if ``ref`` is still one of it."""
        entry = self._entries.get(ident)
        if entry is not None and any(r is ref for r in entry.refs):
            # Not contextlib.suppress: this also runs during interpreter exit, when module globals may be gone.
            try:
                del self._entries[ident]
            except KeyError:
                return
            self.dropped.append(entry.pickled.key)


def _forgetter(cache: weakref.ref[FunctionCache], ident: Any) -> Callable[[Any], None]:
    # The callback refers to the cache weakly and to nothing of the entry: no cycle keeps either alive.
    def forget(ref: Any) -> None:
        owner = cache()
        if owner is not None:
            owner._forget(ident, ref)

    return forget


def _ref(obj: Any, callback: Callable[[Any], None]) -> Callable[[], Any]:
    try:
        return weakref.ref(obj, callback)
    except TypeError:
        return _Strong(obj)


def drain(keys: deque[int]) -> set[int]:
    """Take every key out of ``keys`` (a `FunctionCache.dropped`; the scheduler thread)."""
    drained = set()
    while keys:
        drained.add(keys.popleft())
    return drained
