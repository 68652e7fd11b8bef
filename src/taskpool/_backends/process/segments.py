"""Large buffers through shared memory: the segments a side lends, the socket their descriptors travel on, and
where received ones land.

Each side of a worker (the parent's scheduler thread, the worker process) *lends* segments it owns: it copies
an out-of-band buffer into one of its segments (`SegmentPool`, one kernel copy, nothing mapped on its side),
sends the segment's descriptor over the worker's Unix socket (`FdChannel`) under a fresh token, and puts a
descriptor ``(token, length)`` in the frame instead of the bytes. The receiver takes the descriptor off the
socket and *lands* the buffer (`Link.land`): a writable buffer (a numpy array, a bytearray) is mapped without
a copy, ``MAP_SHARED``, since the segment is the receiver's alone until it gives it back; a read-only one (a
``bytes``) is read into a new ``bytes`` object and the segment given back at once, so that it costs its size
once. When the mapping is freed (the job's arguments, or the result the caller dropped), its token is queued
in `Link.released`, and a ``release`` message takes it back to the lender, which reuses the segment: filling a
fresh segment costs a page fault per page, about three times the cost of refilling a used one.

Large job arguments are copied into a segment when the job is submitted instead (a `Snapshot`, see
`lender`), so that the job sees its arguments as they were then, and are lent at send time by the link the
frame goes through (`sending`); the worker maps them copy-on-write (``MAP_PRIVATE``), so a retry finds them
unchanged. A descriptor never waits for room in the socket (`FdChannel.send`): a buffer whose descriptor does
not fit travels in the pipe.

Lifetime: segments are anonymous (`taskpool._runtime.shm`), so none outlives the last process that holds a
descriptor or a mapping of it, however it ends. Segments lent to a worker that died come back at once (their
mappings died with it); see `lender` for how many are kept for reuse.

Threads: in the parent, the scheduler thread alone uses every `Link` (caller threads fill snapshots in the
backend's `SegmentPool`, which has a lock of its own), except `Link.released`, a deque that a mapping's
finalizer appends to from whichever thread frees it. In a worker, the pool and the channel are used under the
outbox's lock (main and flusher threads), the landing by the main thread. Imports the standard library and `taskpool._runtime` only, so that a worker starts light.
"""

from __future__ import annotations

import array
import contextlib
import os
import select
import socket
import struct
import sys
import threading
import weakref
from collections import deque
from typing import Any

from ..._runtime import shm
from .landing import new_bytes
from .lender import SegmentPool, Snapshot

__all__ = [
    "SHM_MIN",
    "FdChannel",
    "Link",
    "land_snapshot",
    "receiving",
    "reduce_snapshot",
    "sending",
    "shm_supported",
    "socket_pair",
]

#: Out-of-band buffers at least this large travel in shared memory instead of the pipe. Measured on Linux
#: (one worker, numpy arrays): shared memory loses at 32 KiB, breaks even at 64 KiB and wins from 128 KiB
#: (1.2-1.8x), by 2-3x at 256 KiB and 3-5x from 1 MiB, both ways. The threshold sits one step above the
#: crossover, so that a machine where passing a descriptor and mapping cost more still gains.
SHM_MIN = 256 * 1024
_TOKEN = struct.Struct("!Q")
# How long the parent waits for a descriptor the worker sent before the frame that names it (it is in the
# socket already; the wait only guards against a bug turning into a hang).
_RECV_WAIT = 5.0
# How long a descriptor that must arrive (a shared object's) may wait for room in the socket.
_SEND_WAIT = 1.0
# The most descriptors one receive takes (SCM_MAX_FD on Linux is 253).
_RECV_FDS = 64

# How many mappings `Link.land` made are alive in this process (see `shm.MAPPED_MAX`). A one-item list: the
# finalizers that lower it run in any thread, and the count only decides between mapping and copying.
_mapped = [0]


# The link whose frame the scheduler thread is encoding now (see `sending`), and the worker's one link.
_sending = threading.local()
_receiver: list[Link] = []


def sending(link: Link | None) -> None:
    """Say which link the frame encoded next in this thread goes through (None: none); a `Snapshot` in it
    is lent to that link's worker."""
    _sending.link = link


def receiving(link: Link) -> None:
    """Make ``link`` where this worker's snapshots land (worker, once, before the first frame)."""
    _receiver.append(link)


def reduce_snapshot(snapshot: Snapshot) -> Any:
    """How a `Snapshot` pickles: the loan of its segment to the worker whose frame is being encoded, or its
    bytes, in band, when there is no such worker or the loan fails (then it travels through the pipe)."""
    link: Link | None = getattr(_sending, "link", None)
    if link is not None:
        token = link.lend_snapshot(snapshot)
        if token is not None:
            return land_snapshot, (token, snapshot.nbytes, snapshot.readonly)
    return _same, (snapshot.read(),)


def _same(data: bytes | bytearray) -> bytes | bytearray:
    return data


def land_snapshot(token: int, nbytes: int, readonly: bool) -> Any:
    """What a snapshot unpickles to in a worker: its segment mapped copy-on-write (no copy), or read into
    ``bytes`` when it was read-only."""
    return _receiver[0].land(token, nbytes, readonly, private=True)


def _new_bytearray(n: int) -> tuple[bytearray, memoryview]:
    buf = bytearray(n)
    return buf, memoryview(buf)


def shm_supported() -> bool:
    """Whether large data may travel in shared memory here: Linux (memfd), with descriptor-passing sockets.

    Elsewhere it goes through the pipes, silently: that is the documented transport there. On Linux, a
    ``memfd_create`` that is missing or fails is found when the first large buffer is sent, and warned of once.
    """
    return (
        sys.platform.startswith("linux")
        and hasattr(socket, "SOCK_SEQPACKET")
        and hasattr(socket, "SCM_RIGHTS")
    )


def socket_pair() -> tuple[socket.socket, socket.socket] | None:
    """A connected pair of Unix sockets for descriptors (``SOCK_SEQPACKET``), or None where there is none."""
    kind = getattr(socket, "SOCK_SEQPACKET", None)
    if kind is None or not hasattr(socket, "AF_UNIX") or not hasattr(socket, "SCM_RIGHTS"):
        return None
    try:
        return socket.socketpair(socket.AF_UNIX, kind)
    except OSError:
        return None


class FdChannel:
    """Descriptors sent and received under tokens, over one Unix socket.

    A sender always sends a descriptor before the frame that names it, so a receiver that meets an unknown
    token finds it in the socket already.
    """

    def __init__(self, sock: socket.socket, blocking: bool) -> None:
        self.sock = sock
        self._blocking = blocking
        sock.setblocking(blocking)
        self._fds: dict[int, int] = {}

    def send(self, token: int, fd: int, wait: bool = False) -> bool:
        """Send ``fd`` under ``token``; False when it cannot go now (the caller sends the data another way).

        Never blocks unless ``wait`` (a descriptor that must arrive): the receiver takes descriptors only
        while it reads the frame that names them, which comes after them, so a sender that blocked on a
        full socket would wait for ever. ``wait`` waits at most `_SEND_WAIT` seconds.
        """
        # sendmsg itself: socket.send_fds drops its flags before Python 3.12.
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
        try:
            if wait:
                self.sock.settimeout(_SEND_WAIT)
                self.sock.sendmsg([_TOKEN.pack(token)], rights)
            else:
                self.sock.sendmsg([_TOKEN.pack(token)], rights, socket.MSG_DONTWAIT)
        except OSError:
            # Full (BlockingIOError, TimeoutError), the other side is gone, or too many descriptors in flight.
            return False
        finally:
            if wait:
                self.sock.setblocking(self._blocking)
        return True

    def take(self, token: int) -> int:
        """The descriptor sent under ``token`` (the caller owns it now).

        Raises:
            OSError: it did not come (the other side died before sending it, or a descriptor was lost).
        """
        fds = self._fds
        while token not in fds:
            self._receive()
        return fds.pop(token)

    def _receive(self) -> None:
        if not self._blocking:
            ready, _, _ = select.select([self.sock], [], [], _RECV_WAIT)
            if not ready:
                raise TimeoutError("a shared memory descriptor named in a frame did not arrive")
        data, fds, _flags, _addr = socket.recv_fds(self.sock, _TOKEN.size * _RECV_FDS, _RECV_FDS)
        if not data:
            raise EOFError("the shared memory socket closed")
        tokens = [_TOKEN.unpack_from(data, i)[0] for i in range(0, len(data), _TOKEN.size)]
        if len(fds) != len(tokens):
            for fd in fds:
                os.close(fd)
            raise OSError(
                "shared memory descriptors were lost in transit (no descriptor left here?)"
            )
        self._fds.update(zip(tokens, fds, strict=True))

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        with contextlib.suppress(OSError):
            self.sock.close()


class Link:
    """One side's end of a worker's shared memory path: lend buffers to the other side, land what it lends.

    ``pool`` is the lender's `SegmentPool` (the parent's is shared by its workers); ``borrower`` names the
    other side in it.
    """

    def __init__(
        self, sock: socket.socket, pool: SegmentPool, borrower: int, blocking: bool
    ) -> None:
        self.channel = FdChannel(sock, blocking)
        self.pool = pool
        self.borrower = borrower
        #: Tokens of received segments this side no longer uses, to be sent back in a release message.
        self.released: deque[int] = deque()

    def lend(self, view: memoryview) -> int | None:
        """Put ``view`` in a segment and send its descriptor: its token, or None (send it in the pipe).

        Buffers under `SHM_MIN` (looked up at each call) always go in the pipe.
        """
        if view.nbytes < SHM_MIN:
            return None
        got = self.pool.fill(view, self.borrower)
        if got is None:
            return None
        token, fd = got
        if not self.channel.send(token, fd):
            self.pool.release((token,))
            return None
        return token

    def lend_snapshot(self, snapshot: Snapshot) -> int | None:
        """Lend ``snapshot``'s segment to the other side and send its descriptor: the loan's token, or None."""
        token = self.pool.hold(snapshot.seg, self.borrower)
        if token is None:
            return None
        if not self.channel.send(token, snapshot.seg.fd):
            self.pool.release((token,))
            return None
        return token

    def land(self, token: int, nbytes: int, readonly: bool, private: bool = False) -> Any:
        """The buffer the other side lent under ``token``: mapped when writable, read into ``bytes`` when not.

        ``private``: mapped copy-on-write (a snapshot, whose segment must keep what was submitted).

        Raises:
            OSError: the descriptor did not come, or the segment could not be mapped or read.
        """
        fd = self.channel.take(token)
        try:
            mapping = None
            if not readonly and _mapped[0] < shm.MAPPED_MAX:
                with contextlib.suppress(OSError):  # no room to map it: a copy may still fit
                    mapping = shm.map_segment(fd, nbytes, private=private)
            if mapping is None:
                obj, target = new_bytes(nbytes) if readonly else _new_bytearray(nbytes)
                shm.read_into(fd, target)
                self.released.append(token)
                return memoryview(obj)
        finally:
            os.close(fd)
        _mapped[0] += 1
        weakref.finalize(mapping, self._unmapped, token)
        return mapping

    def _unmapped(self, token: int) -> None:
        """A mapping `land` made was freed (any thread): its segment goes back to the lender."""
        _mapped[0] -= 1
        self.released.append(token)

    def take_released(self) -> tuple[int, ...]:
        """Empty `released` (any thread may be appending to it)."""
        out: list[int] = []
        released = self.released
        while released:
            out.append(released.popleft())
        return tuple(out)

    def close(self) -> None:
        self.channel.close()
