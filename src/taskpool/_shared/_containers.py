"""Proxies for shared data: `SharedDict`, `SharedList`, `SharedNamespace`, `SharedValue`, `SharedArray` and
`SharedCounter`.

Runs in every process that holds a proxy (the parent and workers), in whichever thread calls it. Each method call
is one round trip to the manager server, where the object itself lives, and is atomic on its own; a sequence of
calls is not: ``d[k] += 1`` is a get and then a set, and another process can write in between.
`SharedDict.increment` and `SharedCounter.add` run entirely inside the server under a lock instead.
"""

from __future__ import annotations

import array as _array
import builtins
import sys
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    MutableMapping,
    MutableSequence,
    ValuesView,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._proxy import SharedProxy

if TYPE_CHECKING:
    from _typeshed import SupportsGetItem, SupportsKeysAndGetItem

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# A sentinel for "no default given", so that None stays a valid default.
_MISSING: Any = object()


class SharedDict(SharedProxy, MutableMapping[K, V], Generic[K, V]):
    """A dict in the manager server process, returned by ``pool.shared.dict()``.

    It has the usual dict methods; each is one round trip, so each is atomic on its own, but a sequence of them
    is not: ``d[k] += 1`` is a get and then a set, and another process can write in between. Use `increment`,
    which runs entirely inside the server under a lock. Iteration, ``keys()``, ``values()`` and ``items()`` go
    over a snapshot taken in one round trip.
    """

    _exposed_ = (
        "__contains__",
        "__delitem__",
        "__getitem__",
        "__len__",
        "__setitem__",
        "clear",
        "copy",
        "get",
        "increment",
        "key_list",
        "pop",
        "popitem",
        "setdefault",
        "update",
    )

    @overload
    def increment(self, key: K, amount: int = 1) -> int: ...
    @overload
    def increment(self, key: K, amount: float) -> float: ...

    def increment(self, key: K, amount: float = 1) -> float:
        """Add ``amount`` to ``d[key]`` (a missing key counts as 0) atomically; return the new value.

        Runs inside the manager server under the dict's lock: concurrent increments from any number of
        processes and threads lose nothing.
        """
        return cast("float", self._call("increment", key, amount))

    def __getitem__(self, key: K, /) -> V:
        return cast("V", self._call("__getitem__", key))

    def __setitem__(self, key: K, value: V, /) -> None:
        self._call("__setitem__", key, value)

    def __delitem__(self, key: K, /) -> None:
        self._call("__delitem__", key)

    def __contains__(self, key: object, /) -> bool:
        return cast("bool", self._call("__contains__", key))

    def __len__(self) -> int:
        return cast("int", self._call("__len__"))

    def __iter__(self) -> Iterator[K]:
        return iter(cast("builtins.list[K]", self._call("key_list")))

    def keys(self) -> KeysView[K]:
        """Return the keys of a snapshot of the dict."""
        return self.copy().keys()

    def values(self) -> ValuesView[V]:
        """Return the values of a snapshot of the dict."""
        return self.copy().values()

    def items(self) -> ItemsView[K, V]:
        """Return the items of a snapshot of the dict."""
        return self.copy().items()

    def copy(self) -> builtins.dict[K, V]:
        """Return a plain local dict with the current contents (one round trip)."""
        return cast("builtins.dict[K, V]", self._call("copy"))

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V, /) -> V: ...
    @overload
    def get(self, key: K, default: T, /) -> V | T: ...

    def get(self, key: K, default: object = None, /) -> object:
        return self._call("get", key, default)

    @overload
    def pop(self, key: K, /) -> V: ...
    @overload
    def pop(self, key: K, default: V, /) -> V: ...
    @overload
    def pop(self, key: K, default: T, /) -> V | T: ...

    def pop(self, key: K, default: object = _MISSING, /) -> object:
        if default is _MISSING:
            return self._call("pop", key)
        return self._call("pop", key, default)

    def popitem(self) -> tuple[K, V]:
        return cast("tuple[K, V]", self._call("popitem"))

    @overload
    def setdefault(self: SharedDict[K, T | None], key: K, default: None = None, /) -> T | None: ...
    @overload
    def setdefault(self, key: K, default: V, /) -> V: ...

    def setdefault(self, key: K, default: object = None, /) -> object:
        return self._call("setdefault", key, default)

    @overload
    def update(self, m: SupportsKeysAndGetItem[K, V], /) -> None: ...
    @overload
    def update(
        self: SupportsGetItem[str, V], m: SupportsKeysAndGetItem[str, V], /, **kwargs: V
    ) -> None: ...
    @overload
    def update(self, m: Iterable[tuple[K, V]], /) -> None: ...
    @overload
    def update(
        self: SupportsGetItem[str, V], m: Iterable[tuple[str, V]], /, **kwargs: V
    ) -> None: ...
    @overload
    def update(self: SupportsGetItem[str, V], /, **kwargs: V) -> None: ...

    def update(self, m: Any = (), /, **kwargs: Any) -> None:
        # Gathered locally first, so the server applies everything in one call (atomic, one round trip), and
        # so a generator argument, which cannot be pickled, works too.
        data: builtins.dict[Any, Any] = builtins.dict(m)
        data.update(kwargs)
        self._call("update", data)

    def clear(self) -> None:
        self._call("clear")


class SharedList(SharedProxy, MutableSequence[T], Generic[T]):
    """A list in the manager server process, returned by ``pool.shared.list()``.

    Each method is one round trip and atomic on its own; ``l[i] += 1`` is two and is not. Iteration goes over a
    snapshot taken in one round trip.
    """

    _exposed_ = (
        "__contains__",
        "__delitem__",
        "__getitem__",
        "__len__",
        "__setitem__",
        "append",
        "clear",
        "copy",
        "count",
        "extend",
        "index",
        "insert",
        "pop",
        "remove",
        "reverse",
        "sort",
    )

    @overload
    def __getitem__(self, index: int, /) -> T: ...
    @overload
    def __getitem__(self, index: slice, /) -> builtins.list[T]: ...

    def __getitem__(self, index: int | slice, /) -> T | builtins.list[T]:
        return cast("T | builtins.list[T]", self._call("__getitem__", index))

    @overload
    def __setitem__(self, index: int, value: T, /) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T], /) -> None: ...

    def __setitem__(self, index: int | slice, value: Any, /) -> None:
        if isinstance(index, slice):
            value = builtins.list(value)  # an iterator cannot be pickled; a list can
        self._call("__setitem__", index, value)

    @overload
    def __delitem__(self, index: int, /) -> None: ...
    @overload
    def __delitem__(self, index: slice, /) -> None: ...

    def __delitem__(self, index: int | slice, /) -> None:
        self._call("__delitem__", index)

    def __len__(self) -> int:
        return cast("int", self._call("__len__"))

    def __contains__(self, value: object, /) -> bool:
        return cast("bool", self._call("__contains__", value))

    def __iter__(self) -> Iterator[T]:
        return iter(self.copy())

    def __reversed__(self) -> Iterator[T]:
        return reversed(self.copy())

    def __iadd__(self, values: Iterable[T], /) -> SharedList[T]:
        self.extend(values)
        return self

    def insert(self, index: int, value: T, /) -> None:
        self._call("insert", index, value)

    def append(self, value: T, /) -> None:
        self._call("append", value)

    def extend(self, values: Iterable[T], /) -> None:
        self._call("extend", builtins.list(values))

    def pop(self, index: int = -1, /) -> T:
        return cast("T", self._call("pop", index))

    def remove(self, value: T, /) -> None:
        self._call("remove", value)

    def index(self, value: Any, start: int = 0, stop: int = sys.maxsize, /) -> int:
        return cast("int", self._call("index", value, start, stop))

    def count(self, value: Any, /) -> int:
        return cast("int", self._call("count", value))

    def reverse(self) -> None:
        self._call("reverse")

    def clear(self) -> None:
        self._call("clear")

    def sort(self, *, key: Callable[[T], Any] | None = None, reverse: bool = False) -> None:
        """Sort in place in the server; ``key`` is pickled, so it must be a module-level function."""
        call: Callable[..., Any] = self._callmethod
        call("sort", (), {"key": key, "reverse": reverse})

    def copy(self) -> builtins.list[T]:
        """Return a plain local list with the current contents (one round trip)."""
        return cast("builtins.list[T]", self._call("copy"))


class SharedNamespace(SharedProxy):
    """An object with free attributes in the manager server, returned by ``pool.shared.namespace()``.

    Attribute names that start with ``_`` belong to the proxy itself and are not shared.
    """

    _exposed_ = ("__delattr__", "__getattribute__", "__setattr__")

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy itself does not have.
        if name.startswith("_"):
            raise AttributeError(name)
        return self._call("__getattribute__", name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._call("__setattr__", name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            object.__delattr__(self, name)
        else:
            self._call("__delattr__", name)


class SharedValue(SharedProxy, Generic[T]):
    """One value in the manager server, returned by ``pool.shared.value(typecode, initial)``.

    ``v.value += 1`` is a get and a set (two round trips) and can lose updates; use a `SharedCounter` for counts.
    """

    _exposed_ = ("get", "set")

    def get(self) -> T:
        return cast("T", self._call("get"))

    def set(self, value: T) -> None:
        self._call("set", value)

    @property
    def value(self) -> T:
        return self.get()

    @value.setter
    def value(self, value: T) -> None:
        self.set(value)


class SharedArray(SharedProxy, Generic[T]):
    """An ``array.array`` in the manager server, returned by ``pool.shared.array(typecode, sequence)``.

    Indexing, slicing and assignment each take one round trip; the typecode is enforced in the server.
    """

    # __getattribute__ lets the proxy read the array's typecode.
    _exposed_ = ("__getattribute__", "__getitem__", "__len__", "__setitem__", "tolist")

    @overload
    def __getitem__(self, index: int, /) -> T: ...
    @overload
    def __getitem__(self, index: slice, /) -> builtins.list[T]: ...

    def __getitem__(self, index: int | slice, /) -> T | builtins.list[T]:
        result = self._call("__getitem__", index)
        if isinstance(index, slice):
            # The server answers with an array.array; a list is what callers can type.
            return cast("builtins.list[T]", result.tolist())
        return cast("T", result)

    @overload
    def __setitem__(self, index: int, value: T, /) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T], /) -> None: ...

    def __setitem__(self, index: int | slice, value: Any, /) -> None:
        if isinstance(index, slice):
            # array.array accepts only another array for slice assignment; the server builds it.
            self._call("__setitem__", index, _array.array(self._typecode(), value))
        else:
            self._call("__setitem__", index, value)

    def _typecode(self) -> str:
        return cast("str", self._call("__getattribute__", "typecode"))

    def __len__(self) -> int:
        return cast("int", self._call("__len__"))

    def __iter__(self) -> Iterator[T]:
        return iter(self.tolist())

    def tolist(self) -> builtins.list[T]:
        """Return a plain local list with the current contents (one round trip)."""
        return cast("builtins.list[T]", self._call("tolist"))


class SharedCounter(SharedProxy):
    """An integer counter in the manager server, returned by ``pool.shared.counter(initial)``.

    `add` runs inside the server under a lock, so concurrent adds from any number of processes lose nothing.
    ``value`` is read-only on purpose: ``c.value += 1`` would be a read and a write, which loses updates.
    """

    _exposed_ = ("add", "get", "set")

    def add(self, n: int = 1) -> int:
        """Add ``n`` atomically (in the manager server); return the new value."""
        return cast("int", self._call("add", n))

    def get(self) -> int:
        """Return the current value."""
        return cast("int", self._call("get"))

    def set(self, value: int) -> None:
        """Replace the value (for a reset; use `add` to count)."""
        self._call("set", value)

    @property
    def value(self) -> int:
        """The current value (same as `get`)."""
        return self.get()
