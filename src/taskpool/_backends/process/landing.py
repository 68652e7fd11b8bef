"""Where a frame with out-of-band buffers lands as it is read: each large read-only buffer straight into a
`bytes` object of its own, so that a large ``bytes`` result or argument is never copied after it is read.

A frame's body is ``!Q`` per buffer length (the top bit says the buffer is read-only), the pickle of the
messages, then the buffers (see `taskpool._backends.process.protocol`). A `Body` holds one object per piece:
a `bytearray` for the pickle and for writable or small buffers, and, for each large read-only buffer, a
`bytes` object allocated uninitialized and filled in place before anything else can see it. Unpickling then
hands that `bytes` object (as a whole view of it) to the reducer, and ``_rebuild_bytes`` returns the object
itself: the received value is the very object the pipe was read into.

Runs in the scheduler thread of the parent (`FrameReader`) and in the main thread of a worker
(`read_frame`). Imports the standard library and `taskpool._runtime` only, so that a worker starts light.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
from collections.abc import Callable
from typing import Any

from ..._runtime.serialize import OUT_OF_BAND_MIN

__all__ = [
    "DESC",
    "FLAGS",
    "HEAD",
    "LEN",
    "READONLY",
    "SHM",
    "Body",
    "Land",
    "lengths",
    "new_bytes",
    "read_frame",
    "size_of",
]

#: The top bit of a buffer's length field: the buffer is read-only where it was pickled (a ``bytes``), so the
#: receiver may give it as a ``bytes`` too; unpickling makes every read-only buffer a read-only view anyway.
READONLY = 1 << 63
#: The next bit: the buffer is in shared memory, and what the pipe carries in its place is a `DESC`.
SHM = 1 << 62
FLAGS = READONLY | SHM
#: What stands for a buffer in shared memory: the lender's token for the segment, and the buffer's length.
DESC = struct.Struct("!QQ")
#: A frame's header: its total length and its number of out-of-band buffers; then one length field per buffer.
HEAD = struct.Struct("!QI")
LEN = struct.Struct("!Q")
# Read-only buffers at least this large land in a `bytes` of their own; smaller ones are not worth a piece.
LAND_IN_BYTES_MIN = OUT_OF_BAND_MIN
# How many pieces one readv fills at most (well under IOV_MAX everywhere).
_PIECES_PER_READ = 64

#: Where a buffer in shared memory lands: ``land(token, nbytes, readonly)`` gives the buffer object (a
#: `taskpool._backends.process.segments.Link` method).
Land = Callable[[int, int, bool], Any]


def size_of(raw: int) -> int:
    """The number of bytes a buffer's raw length field says the frame carries for it."""
    return raw & ~FLAGS


def resolve(buffers: list[Any], raw_lengths: list[int], land: Land | None) -> None:
    """Replace each shared memory descriptor among a frame's ``buffers`` by the buffer it stands for."""
    for i, raw in enumerate(raw_lengths):
        if raw & SHM:
            if land is None:
                raise EOFError("a frame names shared memory, but this side has none")
            token, nbytes = DESC.unpack(buffers[i])
            buffers[i] = land(token, nbytes, bool(raw & READONLY))


def _bytes_allocator() -> Callable[[int], tuple[bytes, memoryview]] | None:
    """CPython's way to make a `bytes` object to fill in before it is shared; None where it is missing."""
    try:
        api = ctypes.pythonapi
        # Prototypes of our own: setting restype on ctypes.pythonapi's attributes would change them for all.
        make = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
            ("PyBytes_FromStringAndSize", api)
        )
        data = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyBytes_AsString", api))
    except (AttributeError, OSError, TypeError):  # pragma: no cover - not CPython
        return None

    def allocate(n: int) -> tuple[bytes, memoryview]:
        # NULL contents: the C API's documented way to get an uninitialized bytes object to fill in. Nobody
        # else holds it until the frame is complete, and its hash is computed only when first asked for.
        obj: bytes = make(None, n)
        view = memoryview((ctypes.c_char * n).from_address(data(obj))).cast("B")
        return obj, view

    return allocate


_allocate = _bytes_allocator()


def new_bytes(n: int) -> tuple[bytes | bytearray, memoryview]:
    """A new ``n``-byte object to read into, and a writable view of it: a `bytes` where the platform allows."""
    if _allocate is not None and n > 0:
        return _allocate(n)
    buf = bytearray(n)
    return buf, memoryview(buf)


def lengths(data: bytes | bytearray | memoryview, nbuf: int) -> list[int]:
    """The ``nbuf`` raw length fields at the start of a frame's body (flags included)."""
    return [LEN.unpack_from(data, i * LEN.size)[0] for i in range(nbuf)]


class Body:
    """The pieces one frame's body is read into, in the order they arrive, and how far they are filled."""

    __slots__ = ("_buffers", "_main", "_raw", "_targets")

    def __init__(self, main_size: int, raw_lengths: list[int]) -> None:
        self._main = bytearray(main_size)
        self._raw = raw_lengths
        self._buffers: list[Any] = []
        targets = [memoryview(self._main)]
        for raw in raw_lengths:
            n = raw & ~FLAGS
            if raw & READONLY and not raw & SHM and n >= LAND_IN_BYTES_MIN:
                obj, target = new_bytes(n)
                # A whole view of the `bytes` itself (not of the ctypes array that fills it).
                self._buffers.append(memoryview(obj))
            else:
                buf = bytearray(n)
                target = memoryview(buf)
                self._buffers.append(target)
            targets.append(target)
        #: What is left to fill, in order (empty pieces are already full).
        self._targets = [t for t in targets if t.nbytes]
        self._targets.reverse()  # filled from the end of the list: pop() is cheap

    @classmethod
    def after_lengths(cls, size: int, raw_lengths: list[int]) -> Body:
        """The body of a frame whose part after the length fields is ``size`` bytes long."""
        main = size - sum(raw & ~FLAGS for raw in raw_lengths)
        if main < 0:
            raise EOFError("a corrupt frame: its buffers are longer than the frame")
        return cls(main, raw_lengths)

    def targets(self) -> list[memoryview]:
        """The writable views that the next read fills, in order."""
        return self._targets[: -_PIECES_PER_READ - 1 : -1]

    def advance(self, k: int) -> None:
        """``k`` more bytes were read into the views `targets` gave."""
        targets = self._targets
        while k:
            head = targets[-1]
            if k >= head.nbytes:
                k -= head.nbytes
                targets.pop()
            else:
                targets[-1] = head[k:]
                k = 0

    def fill(self, data: memoryview) -> int:
        """Copy what can be copied of ``data`` into the pieces; returns how many bytes were taken."""
        taken = 0
        targets = self._targets
        while targets and taken < data.nbytes:
            head = targets[-1]
            n = min(head.nbytes, data.nbytes - taken)
            head[:n] = data[taken : taken + n]
            taken += n
            self.advance(n)
        return taken

    @property
    def done(self) -> bool:
        return not self._targets

    def decode(self, land: Land | None = None) -> list[Any]:
        """Unpickle the frame's batch of messages (once `done`); ``land`` places buffers in shared memory."""
        resolve(self._buffers, self._raw, land)
        messages: list[Any] = pickle.loads(self._main, buffers=self._buffers)
        return messages


def _read_exact(fd: int, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise EOFError("the other end of the pipe closed")
        got += k
    return buf


def read_frame(fd: int, land: Land | None = None) -> list[Any]:
    """Read one frame from a blocking pipe and decode its batch of messages (``land``: see `Body.decode`).

    Raises:
        EOFError: the writer closed its end (it exited or was killed), possibly mid-frame.
    """
    total, nbuf = HEAD.unpack(_read_exact(fd, HEAD.size))
    if nbuf == 0:
        messages: list[Any] = pickle.loads(_read_exact(fd, total - HEAD.size))
        return messages
    fields = nbuf * LEN.size
    body = Body.after_lengths(total - HEAD.size - fields, lengths(_read_exact(fd, fields), nbuf))
    while not body.done:
        k = os.readv(fd, body.targets())
        if k == 0:
            raise EOFError("the other end of the pipe closed")
        body.advance(k)
    return body.decode(land)
