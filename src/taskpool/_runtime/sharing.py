"""Objects a pool shares with its workers through shared memory: ``pool.share`` handles and
``pool.shared.array`` arrays.

**In the parent**, a `Registry` (one per process pool) makes them. ``share(obj)`` pickles the object once, its
large buffers apart, into one anonymous segment (`taskpool._runtime.shm`), and returns a `Shared` handle.
``array(shape, dtype)`` maps a zeroed segment and returns a numpy array over it (`shared_array`). Both pickle
as a reference to their segment (a token), never as their contents. While a job's arguments are pickled, the
tokens they name are collected (`collect`), so that the process backend sends each worker a segment's
descriptor once, before the first job that names it. The registry closes its descriptors when the pool ends;
an array the caller still holds keeps its memory until it is dropped.

**In a worker**, the token resolves on unpickling: the segment is mapped once per worker and kept for the
worker's life; a handle is unpickled once per worker and the same object is given to every later job
(`resolve`), read-only where it exports a buffer (its numpy arrays); an array is a view of the segment, which
every worker and the parent write and read in place.

Threads and processes: `Registry` runs in any thread of the parent (its own lock guards it); `collect`,
`resolve` and `attach_array` run in the thread that pickles or unpickles (a caller thread of the parent, the
main thread of a worker). Imports the standard library only; numpy is imported on the first array.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from . import shm
from .serialize import dumps_split

__all__ = ["Registry", "Shared", "attach", "collect", "fd_source", "note", "resolve"]

T = TypeVar("T")

#: The segments this process has mapped, by token: the parent's own, and those a worker attached.
_mapped: dict[int, Any] = {}
#: The objects handles resolved to in this process, by token (each is unpickled at most once per process).
_objects: dict[int, Any] = {}
_lock = threading.Lock()
_collecting = threading.local()
#: In a worker: gives the descriptor of a shared segment by token (the worker's socket); empty in the parent.
fd_source: list[Callable[[int], int]] = []
#: Whether this process ever made a shared object or array: until then, nothing pickled can name one, and a
#: job's arguments are pickled without collecting tokens (it is on the path of every submit).
in_use: list[bool] = []


def collect(tokens: list[int] | None) -> None:
    """Start (a list) or stop (None) collecting, in this thread, the tokens of what is being pickled."""
    _collecting.tokens = tokens


def note(token: int) -> None:
    """A handle or a shared array is being pickled: record its token, where someone collects them.

    Raises:
        pickle.PicklingError: in the parent, outside a job's arguments (a function's closure, a shared-state
            container): nothing would deliver the segment to the worker.
    """
    tokens = getattr(_collecting, "tokens", None)
    if tokens is not None:
        tokens.append(token)
    elif not fd_source:
        raise pickle.PicklingError(
            "a shared object (pool.share) or shared array (pool.shared.array) travels only in a job's "
            "arguments: pass it as an argument, not in the function's closure, a partial, or shared state"
        )


class _Layout(NamedTuple):
    """Where a shared object's pickle and its buffers lie in its segment: ``(offset, length)`` each."""

    size: int
    main: tuple[int, int]
    buffers: tuple[tuple[int, int], ...]


class Shared(Generic[T]):
    """A handle to an object in shared memory, made by ``pool.share(obj)``: pass it as a job argument, and the
    job gets the object itself (unpickled once per worker, then the same object for every job there)."""

    __slots__ = ("_layout", "_token")

    def __init__(self, token: int, layout: _Layout) -> None:
        self._token = token
        self._layout = layout

    def __reduce__(self) -> Any:
        note(self._token)
        return resolve, (self._token, self._layout)

    def __repr__(self) -> str:
        return (
            f"<taskpool.Shared object #{self._token}, {self._layout.size} bytes in shared memory>"
        )


def _align(n: int) -> int:
    return (n + 63) & ~63  # cache-line aligned buffers: numpy's fast paths want aligned data


class Registry:
    """The shared objects and arrays of one process pool (parent, any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}
        self._closed = False

    def fd(self, token: int) -> int | None:
        """The descriptor of the segment under ``token`` (the scheduler sends it to workers), or None."""
        return self._fds.get(token)

    def _add(self, size: int) -> tuple[int, int]:
        if not in_use:
            in_use.append(True)
        fd = shm.create(size)
        if fd is None:
            raise OSError(
                "shared memory is not available here (see the warning logged by taskpool); send the data "
                "as a plain job argument instead"
            )
        token = shm.new_token()
        with self._lock:
            if self._closed:
                os.close(fd)
                raise ValueError("the pool is closed: its shared memory is gone")
            self._fds[token] = fd
        return token, fd

    def share(self, obj: T) -> Shared[T]:
        """Pickle ``obj`` once into shared memory; the handle resolves to it in each worker.

        Raises:
            SerializationError: ``obj`` does not pickle.
            OSError: shared memory is not available here.
        """
        main, buffers = dumps_split(obj, "shared object", "parent")
        views = [b.raw() for b in buffers]
        offset = _align(len(main))
        places = []
        for v in views:
            places.append((offset, v.nbytes))
            offset = _align(offset + v.nbytes)
        size = max(offset, 1)
        token, fd = self._add(size)
        shm.write_all(fd, memoryview(main))
        for (start, _n), v in zip(places, views, strict=True):
            shm.write_all(fd, v, start)
        return Shared(token, _Layout(size, (0, len(main)), tuple(places)))

    def array(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A zeroed numpy array in shared memory that jobs write and this process reads in place."""
        import numpy as np

        from .shared_array import make

        dt = np.dtype(dtype)
        size = max(int(np.prod(shape, dtype=np.int64)) * dt.itemsize, 1)
        token, fd = self._add(size)
        mapping = shm.map_segment(fd, size)
        with _lock:
            _mapped[token] = mapping
        return make(mapping, token, size, 0, shape, dt, None)

    def close(self) -> None:
        """Close every descriptor (the pool ended); arrays still held keep their memory until dropped."""
        with self._lock:
            self._closed = True
            fds, self._fds = self._fds, {}
        with _lock:
            for token in fds:
                _mapped.pop(token, None)
        for fd in fds.values():
            os.close(fd)


def attach(token: int, size: int, writable: bool) -> Any:
    """The mapping of shared segment ``token`` in this process, mapped on first use (worker) or made here.

    Raises:
        OSError: the segment is not known here (its pool has ended).
    """
    with _lock:
        mapping = _mapped.get(token)
        if mapping is None:
            if not fd_source:
                raise OSError(f"shared memory #{token} is gone (its pool has ended)")
            fd = fd_source[0](token)
            try:
                mapping = shm.map_segment(fd, size, writable=writable)
            finally:
                os.close(fd)
            _mapped[token] = mapping
        return mapping


_MISSING = object()


def resolve(token: int, layout: _Layout) -> Any:
    """What a `Shared` handle unpickles to: its object, unpickled once in this process."""
    obj = _objects.get(token, _MISSING)
    if obj is not _MISSING:
        return obj
    view = memoryview(attach(token, layout.size, writable=False))
    start, length = layout.main
    obj = pickle.loads(
        view[start : start + length], buffers=[view[o : o + n] for o, n in layout.buffers]
    )
    _objects[token] = obj
    return obj


def attach_array(
    token: int, size: int, offset: int, shape: tuple[int, ...], dtype: Any, strides: Any
) -> Any:
    """What a shared array unpickles to: a view of its segment (no copy), in the parent or a worker."""
    from .shared_array import make

    return make(attach(token, size, writable=True), token, size, offset, shape, dtype, strides)
