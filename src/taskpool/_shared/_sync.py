"""Proxies for shared synchronisation primitives: `SharedLock`, `SharedSemaphore`, `SharedEvent`,
`SharedBarrier` and `SharedQueue`.

Runs in every process that holds a proxy (the parent and workers), in whichever thread calls it. The primitive
itself is the standard library's, living in the manager server; a blocking call (``acquire``, ``wait``, ``get``)
blocks a server thread and this caller's connection until it returns, so pass a timeout wherever a crash or a
missing party could leave it waiting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast

from ._proxy import SharedProxy

if TYPE_CHECKING:
    from types import TracebackType

T = TypeVar("T")


class SharedLock(SharedProxy):
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


class SharedEvent(SharedProxy):
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


class SharedBarrier(SharedProxy):
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


class SharedQueue(SharedProxy, Generic[T]):
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
