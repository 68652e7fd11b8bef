"""Manager-backed shared state: what ``pool.shared`` returns.

Processes and threads:

- **The parent** (the process that owns the pool) holds one `SharedState`. Constructing it starts nothing. The
  first factory call (``dict()``, ``counter()``, ...) starts one *manager server* process, from any thread;
  ``SharedState._lock`` makes sure only one starts. ``shutdown()`` stops it; the pool calls it when it closes.
- **The manager server process** owns every shared object (the *referent*). The stdlib server runs one thread
  per client connection, and every thread of every process that uses a proxy has its own connection, so two
  workers calling the same object run in two server threads at once. That is why the referents behind
  `SharedDict` and `SharedCounter` hold a lock: ``increment`` and ``add`` read, add and write under it, inside
  the server, so concurrent updates lose nothing. The server ignores SIGINT (Ctrl-C reaches the whole
  foreground process group; the parent decides when the server stops), and a watchdog thread in it exits the
  server when the parent dies, so it is never orphaned.
- **Proxies** live in the parent and in workers. Every proxy method call is one round trip: the call is pickled,
  sent over the socket, run in the server, and the result pickled back. So ``d[k] += 1`` is *two* round trips (a
  get, then a set) and another process can write between them: that update is lost. Use
  ``d.increment(k)``, ``counter.add()``, or hold a ``lock()`` around the read and the write.

Locks: ``SharedState._lock`` guards the state, the manager handle and the list of live proxies. It is held while
the server starts (a bounded wait for a process we own), never while a proxy call or user code runs. In the
server, each managed dict and counter has its own lock, held only around its own update.

Security: the server listens on a Unix domain socket in a private temporary directory (mode 0700) where the
platform has AF_UNIX, on a named pipe on Windows, and never on a TCP address. Clients prove they know a random
32-byte authkey (``os.urandom(32)``) before the server reads anything from them. Everything sent to the server
or back is pickled, and **unpickling runs code**: data in shared state is trusted exactly like the code of the
program itself. The authkey travels inside a pickled proxy (that is how a worker can connect), so do not write
pickled proxies anywhere others can read them.

Lifetime: every shared object lives until the pool closes. `SharedState` keeps a reference to each proxy it
made, because the server frees an object when the last proxy to it is dropped: a proxy created inline as a job
argument could otherwise be freed after it was pickled and before the worker unpickled it.
"""

from __future__ import annotations

import array as _array
import builtins
import enum
import os
import queue as _queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    MutableSequence,
    ValuesView,
)
from multiprocessing import connection as _connection
from multiprocessing import parent_process
from multiprocessing import util as _mp_util
from multiprocessing.managers import BaseManager, BaseProxy, Namespace

# RebuildProxy is the stdlib's unpickler for proxies: besides rebuilding the proxy it recognises a proxy that
# arrives back inside its own server (a proxy stored in a shared dict) and hands out the object itself.
# typeshed does not declare it.
from multiprocessing.managers import RebuildProxy as _rebuild_proxy  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast, overload

from .._errors import PoolClosedError
from ._referents import ManagedCounter, ManagedDict, ManagedValue

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.managers import Token
    from multiprocessing.process import BaseProcess
    from types import TracebackType

    from _typeshed import SupportsGetItem, SupportsKeysAndGetItem


__all__ = [
    "SharedArray",
    "SharedBarrier",
    "SharedCounter",
    "SharedDict",
    "SharedEvent",
    "SharedList",
    "SharedLock",
    "SharedNamespace",
    "SharedQueue",
    "SharedSemaphore",
    "SharedState",
    "SharedValue",
]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# A sentinel for "no default given", so that None stays a valid default.
_MISSING: Any = object()

# Longest socket path we create. sun_path holds 108 bytes on Linux and 104 on macOS; keep a margin.
_MAX_SOCKET_PATH = 100
_SOCKET_NAME = "manager.sock"

# How long a SIGKILLed server may take to be reaped. SIGKILL cannot be caught, so this only waits for the kernel.
_KILL_GRACE = 1.0


# --------------------------------------------------------------------------------------------------------------
# Proxies: what users hold, in the parent and in workers.
# --------------------------------------------------------------------------------------------------------------


class _SharedProxy(BaseProxy):
    """Base of every taskpool proxy. Each method call is one round trip to the manager server.

    Runs in whichever process and thread holds the proxy; each thread has its own connection to the server.
    """

    # The server allows only the methods named here; `BaseManager.register` reads this attribute.
    _exposed_: ClassVar[tuple[str, ...]] = ()

    # Set by BaseProxy.__init__; declared here because the stubs omit them.
    _token: Token
    _serializer: str
    _authkey: bytes

    def _call(self, method: str, /, *args: Any) -> Any:
        # The stubs declare _callmethod as returning None; it returns the server's answer.
        call: Callable[..., Any] = self._callmethod
        return call(method, args)

    def __reduce__(self) -> tuple[Any, tuple[Any, Any, str, builtins.dict[Any, Any]]]:
        # The stdlib includes the authkey only while spawning a process, so a proxy sent later (as a job
        # argument, through a pipe) would connect with the receiving process's own authkey and be refused.
        # The key goes with the proxy; see the security note at the top of the module.
        kwds = {"authkey": bytes(self._authkey)}
        return (_rebuild_proxy, (type(self), self._token, self._serializer, kwds))


class SharedDict(_SharedProxy, MutableMapping[K, V], Generic[K, V]):
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


class SharedList(_SharedProxy, MutableSequence[T], Generic[T]):
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


class SharedNamespace(_SharedProxy):
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


class SharedLock(_SharedProxy):
    """A lock in the manager server, returned by ``pool.shared.lock()`` and ``pool.shared.rlock()``.

    A worker killed while it holds the lock leaves it held, for every process: pass a ``timeout`` to `acquire`
    where a crash is possible. An ``rlock()`` is owned per thread of the process that acquired it.
    """

    _exposed_ = ("acquire", "release")

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquire the lock; with ``timeout`` (seconds), give up after that long and return False."""
        if timeout is None:
            return cast("bool", self._call("acquire", blocking))
        return cast("bool", self._call("acquire", blocking, timeout))

    def release(self) -> None:
        self._call("release")

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class SharedSemaphore(SharedLock):
    """A semaphore in the manager server, returned by ``pool.shared.semaphore(n)``."""

    def release(self, n: int = 1) -> None:
        self._call("release", n)


class SharedEvent(_SharedProxy):
    """An event in the manager server, returned by ``pool.shared.event()``."""

    _exposed_ = ("clear", "is_set", "set", "wait")

    def is_set(self) -> bool:
        return cast("bool", self._call("is_set"))

    def set(self) -> None:
        self._call("set")

    def clear(self) -> None:
        self._call("clear")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the event is set or ``timeout`` seconds pass; return whether it is set."""
        return cast("bool", self._call("wait", timeout))


class SharedBarrier(_SharedProxy):
    """A barrier in the manager server, returned by ``pool.shared.barrier(parties)``."""

    _exposed_ = ("__getattribute__", "abort", "reset", "wait")

    def wait(self, timeout: float | None = None) -> int:
        """Wait until ``parties`` callers wait; return a number in ``range(parties)``, unique to each caller.

        Raises:
            threading.BrokenBarrierError: the barrier was aborted or reset, or ``timeout`` passed.
        """
        return cast("int", self._call("wait", timeout))

    def abort(self) -> None:
        self._call("abort")

    def reset(self) -> None:
        self._call("reset")

    @property
    def parties(self) -> int:
        return cast("int", self._call("__getattribute__", "parties"))

    @property
    def n_waiting(self) -> int:
        return cast("int", self._call("__getattribute__", "n_waiting"))

    @property
    def broken(self) -> bool:
        return cast("bool", self._call("__getattribute__", "broken"))


class SharedQueue(_SharedProxy, Generic[T]):
    """A FIFO queue in the manager server, returned by ``pool.shared.queue(maxsize)``.

    A blocking ``get`` or ``put`` waits in a server thread; pass ``timeout`` to bound it. It raises
    `queue.Empty` and `queue.Full` like `queue.Queue`.
    """

    _exposed_ = (
        "empty",
        "full",
        "get",
        "get_nowait",
        "join",
        "put",
        "put_nowait",
        "qsize",
        "task_done",
    )

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self._call("put", item, block, timeout)

    def put_nowait(self, item: T) -> None:
        self._call("put_nowait", item)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        return cast("T", self._call("get", block, timeout))

    def get_nowait(self) -> T:
        return cast("T", self._call("get_nowait"))

    def qsize(self) -> int:
        return cast("int", self._call("qsize"))

    def empty(self) -> bool:
        return cast("bool", self._call("empty"))

    def full(self) -> bool:
        return cast("bool", self._call("full"))

    def task_done(self) -> None:
        self._call("task_done")

    def join(self) -> None:
        """Block until every item put has been marked done with `task_done` (no timeout, like `queue.Queue`)."""
        self._call("join")


class SharedValue(_SharedProxy, Generic[T]):
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


class SharedArray(_SharedProxy, Generic[T]):
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


class SharedCounter(_SharedProxy):
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


# --------------------------------------------------------------------------------------------------------------
# The manager and its server process.
# --------------------------------------------------------------------------------------------------------------


class _Manager(BaseManager):
    """The manager class: a BaseManager with only taskpool's types registered (never the stdlib's SyncManager).

    Runs in the parent; its server half runs in the manager server process.
    """

    # Set by BaseManager.start(); declared here because the stubs omit it.
    _process: BaseProcess


_Manager.register("dict", ManagedDict, SharedDict)
_Manager.register("list", builtins.list, SharedList)
_Manager.register("namespace", Namespace, SharedNamespace)
_Manager.register("lock", threading.Lock, SharedLock)
_Manager.register("rlock", threading.RLock, SharedLock)
_Manager.register("semaphore", threading.Semaphore, SharedSemaphore)
_Manager.register("event", threading.Event, SharedEvent)
_Manager.register("barrier", threading.Barrier, SharedBarrier)
_Manager.register("queue", _queue.Queue, SharedQueue)
_Manager.register("value", ManagedValue, SharedValue)
_Manager.register("array", _array.array, SharedArray)
_Manager.register("counter", ManagedCounter, SharedCounter)


def _server_init(socket_dir: str | None) -> None:
    """Prepare the manager server process; runs there, in its main thread, before it serves."""
    # Ctrl-C goes to the whole foreground process group. The server must outlive it so that the parent can
    # shut down in order (the stdlib also ignores SIGINT here; this does not rely on it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if socket_dir is not None:
        # A graceful stop (the manager's own finalizer, at the parent's exit or when it is garbage collected)
        # ends in the server's exit-time finalizers: remove the directory there, after the listener has
        # unlinked its socket (finalizers with priority 0 run before this one).
        _mp_util.Finalize(
            None, shutil.rmtree, args=(socket_dir,), kwargs={"ignore_errors": True}, exitpriority=-1
        )
    parent = parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with_parent,
            args=(parent.sentinel, socket_dir),
            name="taskpool-shared-watchdog",
            daemon=True,
        ).start()


def _exit_with_parent(sentinel: int, socket_dir: str | None) -> None:
    """Exit the manager server when its parent dies; runs in the server's watchdog thread.

    The stdlib server does not watch its parent: if the parent is killed, nobody sends it the shutdown message
    and it would serve an unreachable socket forever. The parent's sentinel becomes ready when the parent is
    gone (with fork, once every process forked from the parent after the server has exited too).
    """
    _connection.wait([sentinel])
    if socket_dir is not None:
        shutil.rmtree(socket_dir, ignore_errors=True)
    # Nobody is left to serve and the state is in memory only, so there is nothing to save: leave at once.
    os._exit(0)


def _private_socket_dir() -> str:
    """Create a directory only this user can enter (mkdtemp makes it 0700); return its path."""
    path = tempfile.mkdtemp(prefix="taskpool-")
    if len(os.path.join(path, _SOCKET_NAME)) > _MAX_SOCKET_PATH and os.path.isdir("/tmp"):
        # A long TMPDIR would overflow sun_path; /tmp is short and mkdtemp keeps the same mode.
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix="taskpool-", dir="/tmp")
    return path


class _State(enum.Enum):
    IDLE = "idle"  # no server yet
    RUNNING = "running"
    CLOSED = "closed"


class SharedState:
    """Shared objects for the jobs of one pool, kept in one manager server process.

    ``pool.shared`` is one of these. Nothing starts until the first factory call; then one server process
    starts (with the pool's multiprocessing context) and serves every object. Each factory returns a proxy that
    can be passed to jobs as an argument; in a job, calling its methods acts on the one shared object. The
    server and every object in it stop when the pool closes; after that, a factory raises `PoolClosedError`.

    Security: the server listens on a Unix domain socket in a private 0700 directory (a named pipe on Windows,
    never TCP) and requires a random 32-byte authkey. Values are pickled on the way in and out, and unpickling
    can run code: data in shared state is trusted like code.

    Thread safety: every method may be called from any thread of the parent. Proxies may be used from any thread
    or process.

    Args:
        ctx: the multiprocessing context used to start the server process.
    """

    def __init__(self, ctx: BaseContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._state = _State.IDLE
        self._manager: _Manager | None = None
        self._socket_dir: str | None = None
        # Proxies kept alive until shutdown; see "Lifetime" in the module docstring.
        self._proxies: builtins.list[BaseProxy] = []

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the server process is running (it starts on the first factory call)."""
        return self._state is _State.RUNNING

    @property
    def closed(self) -> bool:
        """Whether `shutdown` was called."""
        return self._state is _State.CLOSED

    @property
    def pid(self) -> int | None:
        """The server process id, or None when it is not running."""
        manager = self._manager
        return manager._process.pid if manager is not None else None

    @property
    def address(self) -> str | None:
        """The server's socket path (or pipe name on Windows), or None when it is not running."""
        manager = self._manager
        return cast("str", manager.address) if manager is not None else None

    # -- lifetime -----------------------------------------------------------------------------------------

    def _running_manager(self) -> _Manager:
        """Return the manager, starting its server on first use; runs in the calling thread of the parent."""
        with self._lock:
            if self._state is _State.CLOSED:
                raise PoolClosedError("closed")
            if self._manager is None:
                self._manager = self._start()
                self._state = _State.RUNNING
            return self._manager

    def _start(self) -> _Manager:
        # Called with self._lock held: a second thread waits for this start rather than starting another one.
        socket_dir: str | None = None
        address: str | None = None
        if sys.platform == "win32":
            pass  # address None: the stdlib picks a fresh local named pipe (AF_PIPE)
        elif hasattr(socket, "AF_UNIX"):
            socket_dir = _private_socket_dir()
            address = os.path.join(socket_dir, _SOCKET_NAME)
        else:
            raise OSError(
                "shared state needs a local socket (AF_UNIX) or a named pipe; this platform has neither, "
                "and taskpool will not open a TCP port for it"
            )
        try:
            manager = _Manager(address=address, authkey=os.urandom(32), ctx=self._ctx)
            manager.start(initializer=_server_init, initargs=(socket_dir,))
        except BaseException:
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)
            raise
        self._socket_dir = socket_dir
        return manager

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the server process and free every shared object; runs in the calling thread of the parent.

        Idempotent, and fine to call when the server never started. Takes at most about ``timeout`` seconds
        plus one: the server is sent SIGTERM (its objects are in memory only, so there is nothing to save),
        then SIGKILL if it has not exited after ``timeout``. Proxies stop working; factories raise
        `PoolClosedError`.
        """
        with self._lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSED
            manager, self._manager = self._manager, None
            proxies, self._proxies = self._proxies, []
            socket_dir, self._socket_dir = self._socket_dir, None
        try:
            if manager is not None:
                _stop_server(manager, timeout)
        finally:
            # Dropped only now: a proxy dropped while the server runs sends it a "decref" (one round trip
            # each); once the manager is marked shut down, proxies skip that.
            proxies.clear()
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)

    # -- factories ----------------------------------------------------------------------------------------

    def _create(self, typeid: str, *args: Any, **kwargs: Any) -> Any:
        manager = self._running_manager()
        try:
            proxy: BaseProxy = getattr(manager, typeid)(*args, **kwargs)
        except Exception as exc:
            # shutdown() may have run between _running_manager() and here; say so rather than showing a
            # connection error (or the stdlib's assertion that the manager is not running).
            if self._state is _State.CLOSED:
                raise PoolClosedError("closed") from exc
            raise
        with self._lock:
            if self._state is _State.CLOSED:
                raise PoolClosedError("closed")
            self._proxies.append(proxy)
        return proxy

    def namespace(self, **attributes: Any) -> SharedNamespace:
        """Return a shared namespace with the given initial attributes."""
        return cast("SharedNamespace", self._create("namespace", **attributes))

    def lock(self) -> SharedLock:
        """Return a shared (non-reentrant) lock."""
        return cast("SharedLock", self._create("lock"))

    def rlock(self) -> SharedLock:
        """Return a shared reentrant lock."""
        return cast("SharedLock", self._create("rlock"))

    def semaphore(self, value: int = 1) -> SharedSemaphore:
        """Return a shared semaphore with counter ``value``."""
        return cast("SharedSemaphore", self._create("semaphore", value))

    def event(self) -> SharedEvent:
        """Return a shared event, initially clear."""
        return cast("SharedEvent", self._create("event"))

    def barrier(self, parties: int, timeout: float | None = None) -> SharedBarrier:
        """Return a shared barrier for ``parties`` callers; ``timeout`` is the default for its ``wait``."""
        return cast("SharedBarrier", self._create("barrier", parties, None, timeout))

    def queue(self, maxsize: int = 0) -> SharedQueue[Any]:
        """Return a shared FIFO queue (``maxsize`` <= 0 means unbounded)."""
        return cast("SharedQueue[Any]", self._create("queue", maxsize))

    def value(self, typecode: str, initial: T) -> SharedValue[T]:
        """Return one shared value; ``typecode`` is accepted as in ``multiprocessing.Manager().Value``."""
        return cast("SharedValue[T]", self._create("value", typecode, initial))

    def array(self, typecode: str, sequence: Iterable[T]) -> SharedArray[T]:
        """Return a shared ``array.array(typecode, sequence)``."""
        return cast("SharedArray[T]", self._create("array", typecode, builtins.list(sequence)))

    def counter(self, initial: int = 0) -> SharedCounter:
        """Return a shared integer counter whose `SharedCounter.add` is atomic."""
        return cast("SharedCounter", self._create("counter", initial))

    # dict() and list() come last: inside the class body, their names shadow the builtins.

    @overload
    def dict(self, /) -> SharedDict[Any, Any]: ...
    @overload
    def dict(self, data: Mapping[K, V] | Iterable[tuple[K, V]], /) -> SharedDict[K, V]: ...

    def dict(self, data: Any = None, /) -> SharedDict[Any, Any]:
        """Return a shared dict, optionally filled from a mapping or from (key, value) pairs."""
        initial = builtins.dict(data) if data is not None else None
        return cast("SharedDict[Any, Any]", self._create("dict", initial))

    @overload
    def list(self, /) -> SharedList[Any]: ...
    @overload
    def list(self, items: Iterable[T], /) -> SharedList[T]: ...

    def list(self, items: Iterable[Any] = (), /) -> SharedList[Any]:
        """Return a shared list, optionally filled from ``items``."""
        return cast("SharedList[Any]", self._create("list", builtins.list(items)))


def _stop_server(manager: _Manager, timeout: float) -> None:
    """Stop the manager's server process within about ``timeout`` + 1 seconds; runs in the parent.

    The stdlib's graceful stop connects to the server and waits for its answer with no timeout, so a stuck
    server would hang the pool's close. A signal cannot hang.
    """
    process = manager._process
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(_KILL_GRACE)
    if process.is_alive():
        # Still there after SIGKILL (stuck in the kernel). Leave the manager's own finalizer registered rather
        # than call it: it would try the graceful stop and could block.
        return
    # The process is gone, so this only marks the manager shut down: its proxies then skip the decref round trip
    # when they are dropped, and its exit-time finalizer has nothing left to do.
    manager.shutdown()
