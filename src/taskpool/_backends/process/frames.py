"""Frames: how a batch of messages is cut into the pieces written to a pipe, and put back together.

A frame is ``!Q`` total length, ``!I`` buffer count, ``!Q`` per buffer length (its top bit set when the
buffer is read-only, the next when it is in shared memory), then a pickle (protocol 5) of a list of messages
(one batch), then the out-of-band buffers, or for a buffer in shared memory its descriptor (see
`taskpool._backends.process.segments`). Large payloads travel as out-of-band buffers, so they are written from
where they lie instead of being copied into the frame's pickle, and are read straight into the objects they
become (`taskpool._backends.process.landing`).

Runs in the scheduler thread of the parent (`FrameReader`, `FrameWriter`, `encode`) and in the main and
flusher threads of a worker (`read_frame`, `write_frame`). Imports the standard library and
`taskpool._runtime` only, so that a worker starts light.
"""

from __future__ import annotations

import errno
import itertools
import os
import pickle
from collections import deque
from collections.abc import Callable
from typing import Any

from .landing import DESC, HEAD, LEN, READONLY, SHM, Body, Land, lengths, resolve, size_of

__all__ = ["FrameReader", "FrameWriter", "Lend", "decode", "encode", "write_frame"]

_HEAD, _LEN = HEAD, LEN

#: Where a large buffer goes instead of the pipe: ``lend(view)`` puts it in shared memory and gives its token,
#: or None to send it in the pipe (a `taskpool._backends.process.segments.Link` method).
Lend = Callable[[memoryview], "int | None"]


def encode(messages: list[Any], lend: Lend | None = None) -> list[bytes | memoryview]:
    """Encode a batch of messages as the pieces of one frame (header first).

    With ``lend``, each out-of-band buffer is offered to it: one it takes travels in shared memory, and the
    frame carries its descriptor (a `DESC`) in its place.
    """
    buffers: list[pickle.PickleBuffer] = []
    main = pickle.dumps(messages, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return [_HEAD.pack(len(main) + _HEAD.size, 0), main]
    views: list[bytes | memoryview] = []
    fields: list[bytes] = []
    size = 0
    for b in buffers:
        v = b.raw()
        flag = READONLY if v.readonly else 0
        token = lend(v) if lend is not None else None
        if token is not None:
            fields.append(_LEN.pack(DESC.size | SHM | flag))
            views.append(DESC.pack(token, v.nbytes))
            size += DESC.size
        else:
            fields.append(_LEN.pack(v.nbytes | flag))
            views.append(v)
            size += v.nbytes
    head = b"".join(fields)
    total = _HEAD.size + len(head) + len(main) + size
    return [_HEAD.pack(total, len(views)), head, main, *views]


def decode(body: memoryview, nbuf: int, total: int, land: Land | None = None) -> list[Any]:
    """Decode a frame's body (everything after the header); ``land`` places buffers in shared memory."""
    if nbuf == 0:
        messages: list[Any] = pickle.loads(body)
        return messages
    raw = lengths(body, nbuf)
    end = total - _HEAD.size
    bufs: list[Any] = []
    for n in reversed([size_of(r) for r in raw]):
        bufs.append(body[end - n : end])
        end -= n
    bufs.reverse()
    resolve(bufs, raw, land)
    messages = pickle.loads(body[nbuf * _LEN.size : end], buffers=bufs)
    return messages


def write_frame(fd: int, messages: list[Any], lend: Lend | None = None) -> None:
    """Write one frame to a blocking pipe (the worker's side); ``lend``: see `encode`."""
    pieces = encode(messages, lend)
    if len(pieces) == 2:
        # No out-of-band buffers: one write, so that the reader wakes once, to a whole frame.
        pieces = [pieces[0] + pieces[1]]  # type: ignore[operator]
    for piece in pieces:
        view = memoryview(piece)
        while view.nbytes:
            k = os.write(fd, view)
            view = view[k:]


class FrameWriter:
    """Frames queued for a non-blocking pipe, written as far as the pipe takes them (scheduler thread only)."""

    __slots__ = ("fd", "lend", "pending")

    def __init__(self, fd: int, lend: Lend | None = None) -> None:
        self.fd = fd
        self.lend = lend
        os.set_blocking(fd, False)
        self.pending: deque[memoryview] = deque()

    def queue(self, messages: list[Any]) -> None:
        pieces = encode(messages, self.lend)
        self.pending.extend(memoryview(p).cast("B") for p in pieces)

    def flush(self) -> bool:
        """Write what the pipe takes now. Returns True when everything queued has been written.

        Raises:
            BrokenPipeError: the worker's end is closed (it died).
        """
        pending = self.pending
        while pending:
            try:
                k = os.writev(self.fd, list(itertools.islice(pending, 64)))
            except BlockingIOError:
                return False
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    return False
                raise
            while k:
                head = pending[0]
                if k >= head.nbytes:
                    k -= head.nbytes
                    pending.popleft()
                else:
                    pending[0] = head[k:]
                    k = 0
        return True


# The scheduler reads this much at a time; frames larger than this are read straight into the objects they
# become instead (a `Body`: no reassembly, and large buffers are never copied).
_READ_CHUNK = 256 * 1024


class FrameReader:
    """Reassembles frames from a non-blocking pipe (scheduler thread only).

    It never blocks: a worker that dies, or a job that forked a child which kept the pipe open, cannot stall
    the scheduler in the middle of a frame.
    """

    __slots__ = ("_big", "_buf", "fd", "land")

    def __init__(self, fd: int, land: Land | None = None) -> None:
        self.fd = fd
        self.land = land
        os.set_blocking(fd, False)
        self._buf = bytearray()
        self._big: Body | None = None

    def read(self) -> list[list[Any]]:
        """Return every frame that can be completed from what the pipe holds now.

        Raises:
            EOFError: the writer closed its end; frames completed before that were returned earlier.
        """
        frames: list[list[Any]] = []
        fd = self.fd
        while True:
            big = self._big
            if big is not None:
                try:
                    k = os.readv(fd, big.targets())
                except (BlockingIOError, InterruptedError):
                    return frames
                if k == 0:
                    # Hand these over first; the pipe stays at EOF, so the next call raises.
                    if frames:
                        return frames
                    raise EOFError("the worker closed its results pipe in the middle of a frame")
                big.advance(k)
                if big.done:
                    self._big = None
                    frames.append(big.decode(self.land))
                continue
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return frames
            if not chunk:
                # A worker that wrote its last frames and exited: those frames still count.
                if frames:
                    return frames
                raise EOFError("the worker closed its results pipe")
            buf = self._buf
            buf += chunk
            while len(buf) >= _HEAD.size:
                total, nbuf = _HEAD.unpack_from(buf)
                if len(buf) >= total:
                    # A copy, so that buf can shrink under it; a bytearray, so that a writable buffer (a
                    # numpy array) stays writable where it lands (pickle makes read-only ones read-only).
                    frame = buf[_HEAD.size : total]
                    del buf[:total]
                    frames.append(decode(memoryview(frame), nbuf, total, self.land))
                elif total > _READ_CHUNK:
                    self._big = self._begin_big(total, nbuf)
                    break
                else:
                    break

    def _begin_big(self, total: int, nbuf: int) -> Body | None:
        """Start reading a large frame into a `Body` once its length fields are in; None until then."""
        buf = self._buf
        start = _HEAD.size + nbuf * _LEN.size
        if len(buf) < start:
            return None  # the next chunk brings them
        with memoryview(buf) as view:  # released before buf shrinks
            body = Body.after_lengths(total - start, lengths(view[_HEAD.size :], nbuf))
            body.fill(view[start:])
        buf.clear()
        return body
