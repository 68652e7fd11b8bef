"""`SharedState`, what ``pool.shared`` returns: starts the manager server lazily, makes shared objects, shuts down.

Runs in the parent (the process that owns the pool), in any of its threads. Constructing a `SharedState` starts
nothing. The first factory call (``dict()``, ``counter()``, ...) starts one manager server process, from any
thread; ``shutdown()`` stops it, and the pool calls it when it closes.

Locks: ``SharedState._lock`` guards the state, the manager handle and the list of live proxies. It is held while
the server starts (a bounded wait for a process we own), never while a proxy call or user code runs.

Lifetime: every shared object lives until the pool closes. `SharedState` keeps a reference to each proxy it
made, because the server frees an object when the last proxy to it is dropped: a proxy created inline as a job
argument could otherwise be freed after it was pickled and before the worker unpickled it.
"""

from __future__ import annotations

import builtins
import enum
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from multiprocessing.managers import BaseProxy
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from .._errors import ForkedPoolError, PoolClosedError, SharedStateGoneError
from ._containers import (
    SharedArray,
    SharedCounter,
    SharedDict,
    SharedList,
    SharedNamespace,
    SharedValue,
)
from ._server import SharedManager, start_server, stop_server
from ._sync import SharedBarrier, SharedEvent, SharedLock, SharedQueue, SharedSemaphore

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from numpy import generic
    from numpy.typing import DTypeLike, NDArray

log = logging.getLogger("taskpool")

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
S = TypeVar("S", bound="generic")


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
        arrays: makes the numpy arrays ``array(shape, dtype)`` returns (the pool's backend: shared memory on
            the process backend); None: only the Manager-backed ``array(typecode, sequence)``.
    """

    def __init__(
        self, ctx: BaseContext, arrays: Callable[[tuple[int, ...], Any], Any] | None = None
    ) -> None:
        self._ctx = ctx
        self._arrays = arrays
        self._lock = threading.Lock()
        self._state = _State.IDLE
        self._manager: SharedManager | None = None
        self._socket_dir: str | None = None
        # Proxies kept alive until shutdown; see "Lifetime" in the module docstring.
        self._proxies: builtins.list[BaseProxy] = []
        # The process that made the pool, when this is a process forked from it (see `_disown`).
        self._forked_from: int | None = None

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the server process is running (it starts on the first factory call; False once it died)."""
        manager = self._manager
        return self._state is _State.RUNNING and manager is not None and manager._process.is_alive()

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

    def _running_manager(self) -> SharedManager:
        """Return the manager, starting its server on first use; runs in the calling thread of the parent."""
        with self._lock:
            if self._forked_from is not None:
                raise ForkedPoolError(self._forked_from, "shared state")
            if self._state is _State.CLOSED:
                raise PoolClosedError("closed")
            if self._manager is not None and not self._manager._process.is_alive():
                self._discard_server("it exited")
            if self._manager is None:
                # Started with the lock held: a second thread waits for this start rather than starting another.
                self._manager, self._socket_dir = start_server(self._ctx)
                self._state = _State.RUNNING
            return self._manager

    def _discard_server(self, why: str) -> None:
        """Forget a server that died or stopped answering (lock held); the next factory call starts another."""
        manager, self._manager = self._manager, None
        socket_dir, self._socket_dir = self._socket_dir, None
        self._proxies = []
        if manager is not None:
            log.warning(
                "taskpool's shared-state server (pid %s) is gone (%s): the shared objects it held are lost; "
                "new ones go to a new server",
                manager._process.pid,
                why,
            )
            stop_server(manager, 1.0)
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the server process and free every shared object; runs in the calling thread of the parent.

        Idempotent, and fine to call when the server never started. Takes at most about ``timeout`` seconds
        plus one: the server is sent SIGTERM (its objects are in memory only, so there is nothing to save),
        then SIGKILL if it has not exited after ``timeout``. Proxies stop working; factories raise
        `PoolClosedError`.
        """
        with self._lock:
            if self._state is _State.CLOSED or self._forked_from is not None:
                return  # closed already, or the server is a parent process's: never stop it from here
            self._state = _State.CLOSED
            manager, self._manager = self._manager, None
            proxies, self._proxies = self._proxies, []
            socket_dir, self._socket_dir = self._socket_dir, None
        try:
            if manager is not None:
                stop_server(manager, timeout)
        finally:
            # Dropped only now: a proxy dropped while the server runs sends it a "decref" (one round trip
            # each); once the manager is marked shut down, proxies skip that.
            proxies.clear()
            if socket_dir is not None:
                shutil.rmtree(socket_dir, ignore_errors=True)

    def _disown(self, owner: int) -> None:
        """In a process forked from ``owner`` (the pool's fork hook, in the child): refuse every use, and never
        stop the parent's server or remove its socket."""
        self._forked_from = owner
        self._lock = (
            threading.Lock()
        )  # one some parent thread held at the fork would stay held here

    # -- factories ----------------------------------------------------------------------------------------

    def _create(self, typeid: str, *args: Any, **kwargs: Any) -> Any:
        for attempt in (1, 2):
            manager = self._running_manager()
            try:
                proxy: BaseProxy = getattr(manager, typeid)(*args, **kwargs)
                break
            except Exception as exc:
                # shutdown() may have run between _running_manager() and here; say so rather than showing a
                # connection error (or the stdlib's assertion that the manager is not running).
                if self._state is _State.CLOSED:
                    raise PoolClosedError("closed") from exc
                if not isinstance(exc, (ConnectionError, EOFError)):
                    raise
                # The server is alive but does not answer (its accepting thread died, out of memory): start
                # a new one for this object, once.
                with self._lock:
                    if self._manager is manager:
                        self._discard_server(f"{type(exc).__name__}: {exc}")
                if attempt == 2:
                    raise SharedStateGoneError(None, f"{type(exc).__name__}: {exc}") from exc
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

    @overload
    def array(self, typecode: str, sequence: Iterable[T], /) -> SharedArray[T]: ...
    @overload
    def array(self, shape: int | tuple[int, ...], dtype: type[S], /) -> NDArray[S]: ...
    @overload
    def array(self, shape: int | tuple[int, ...], dtype: DTypeLike = ..., /) -> NDArray[Any]: ...

    def array(self, first: Any, second: Any = float, /) -> Any:
        """A shared array: a numpy array in shared memory, or a Manager-backed ``array.array``.

        ``array(shape, dtype=float)`` (``shape`` an int or a tuple of ints): a zeroed numpy array in shared
        memory (numpy must be installed). Pass it to jobs as an argument: every job writes and reads the same
        memory, and this process reads what they wrote in place, without a copy. Views of it (slices) travel
        the same way. Jobs writing the same elements race, as threads do: give each job its own slice, or
        guard with ``lock()``. Freed when the pool ends (an array still held here keeps its memory until
        dropped). On the thread and inline backends it is a plain numpy array.

        ``array(typecode, sequence)`` (``typecode`` a str): a Manager-backed ``array.array(typecode,
        sequence)``; each access is a round trip to the manager server.

        Raises:
            PoolClosedError: the pool is closed.
            OSError: shared memory is not available here (the warning logged says why).
        """
        if isinstance(first, str):
            return cast("SharedArray[Any]", self._create("array", first, builtins.list(second)))
        shape = (first,) if isinstance(first, int) else tuple(first)
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise TypeError(
                f"shape must be a non-negative int or a tuple of them, not {first!r} (or pass a typecode "
                "str and a sequence for a Manager-backed array.array)"
            )
        with self._lock:
            if self._forked_from is not None:
                raise ForkedPoolError(self._forked_from, "shared state")
            if self._state is _State.CLOSED:
                raise PoolClosedError("closed")
        if self._arrays is None:
            raise TypeError("this pool makes no shared numpy arrays")
        return self._arrays(shape, second)

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
