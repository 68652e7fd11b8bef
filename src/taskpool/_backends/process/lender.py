"""`SegmentPool`: the shared memory segments one process fills and lends, reused when they come back; and
`Snapshot`: a writable job argument copied into a segment when the job is submitted.

A segment is *held* by each borrower it was lent to (one token per loan, until the borrower releases it or
dies) and by the `Snapshot` it holds, if any (until the job that carries the snapshot is freed). Only a
segment nobody holds is filled again, so a borrower never sees a segment change under its mapping, and a job
sent again (a retry, or after its worker died) finds its arguments as they were submitted.

A pool keeps at most `IDLE_MAX` bytes, and `IDLE_COUNT_MAX` segments, idle for reuse and closes the rest. It forgets the oldest
loan past `LENT_MAX` (that segment is closed, never reused, once nothing else holds it), so that a caller that
keeps thousands of large results cannot exhaust the process's descriptors.

Threads: in the parent, caller threads make snapshots (`snapshot`), the scheduler thread lends, releases and
reclaims, and a snapshot's finalizer runs in whichever thread frees it (it only queues the segment; the next
call settles it under the lock, so a finalizer run by the garbage collector inside a locked section cannot
deadlock). ``_lock`` guards the pool's state; segments are filled outside it. In a worker, the outbox's lock
serializes the main and flusher threads. Imports the standard library and `taskpool._runtime` only.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict, deque
from typing import Any

from ..._runtime import shm

__all__ = ["IDLE_COUNT_MAX", "IDLE_MAX", "LENT_MAX", "SegmentPool", "Snapshot"]

#: How many bytes of segments a lender keeps for reuse. More: more large buffers in flight reuse memory that
#: is already faulted in; fewer: less memory held while no large data travels.
IDLE_MAX = 512 * 1024 * 1024
#: How many idle segments a lender keeps (each holds a descriptor), whatever their size.
IDLE_COUNT_MAX = 64
#: How many loans a lender keeps track of (each holds a descriptor until the segment comes back).
LENT_MAX = 256


class _Segment:
    __slots__ = ("fd", "holds", "size", "tainted")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.holds = 0
        #: Forgotten while lent: closed once nobody holds it, never filled again.
        self.tainted = False


class Snapshot:
    """A large buffer of a job's arguments, copied into a segment when the job was submitted.

    It pickles, while a frame for a worker is encoded, as the loan of its segment to that worker (see
    `taskpool._backends.process.segments.Link.lend_snapshot`). The worker maps a writable one copy-on-write
    (the job may write into its array, and the segment keeps the submitted values for a retry), and reads a
    read-only one (``bytes``) into a new ``bytes`` object.
    """

    __slots__ = ("__weakref__", "nbytes", "pool", "readonly", "seg")

    def __init__(self, pool: SegmentPool, seg: _Segment, nbytes: int, readonly: bool) -> None:
        self.pool = pool
        self.seg = seg
        self.nbytes = nbytes
        self.readonly = readonly
        weakref.finalize(self, pool.dropped.append, seg)

    def __reduce__(self) -> Any:
        from .segments import reduce_snapshot  # the link that sends it lives there

        return reduce_snapshot(self)

    def read(self) -> bytes | bytearray:
        """A copy of the buffer (to send it through the pipe after all): ``bytes`` when it was read-only."""
        buf = bytearray(self.nbytes)
        shm.read_into(self.seg.fd, memoryview(buf))
        return bytes(buf) if self.readonly else buf


class SegmentPool:
    """The segments one process lends: filled on demand, reused when nobody holds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Segment] = []
        self._idle_bytes = 0
        #: Every segment that is held or idle (closed with the pool).
        self._live: set[_Segment] = set()
        #: token -> (segment, borrower), oldest first.
        self._lent: OrderedDict[int, tuple[_Segment, int]] = OrderedDict()
        #: Segments of snapshots that were freed, to be settled under the lock (appended by finalizers).
        self.dropped: deque[_Segment] = deque()
        self.closed = False

    def _filled(self, view: memoryview) -> _Segment | None:
        """An idle or new segment holding a copy of ``view`` (held by nobody yet), or None (warned once)."""
        n = view.nbytes
        with self._lock:
            self._settle()
            if self.closed:
                return None
            seg = self._take_idle(n)
        if seg is None:
            size = shm.size_class(n)
            fd = shm.create(size)
            if fd is None:
                return None
            seg = _Segment(fd, size)
        # Written outside the lock and outside `_live`, so that `close` cannot close it under the write.
        try:
            shm.write_all(seg.fd, view)
        except OSError as exc:
            os.close(seg.fd)
            shm.warn_once(f"a segment could not be filled: {exc}")
            return None
        with self._lock:
            if self.closed:
                os.close(seg.fd)
                return None
            self._live.add(seg)
        return seg

    def fill(self, view: memoryview, borrower: int) -> tuple[int, int] | None:
        """Copy ``view`` into a segment lent to ``borrower``: ``(token, fd)``, or None (send it in the pipe)."""
        seg = self._filled(view)
        if seg is None:
            return None
        token = self.hold(seg, borrower)
        return None if token is None else (token, seg.fd)

    def snapshot(self, view: memoryview) -> Snapshot | None:
        """Copy ``view`` into a segment held by the `Snapshot` returned, or None (send it in band)."""
        seg = self._filled(view)
        if seg is None:
            return None
        with self._lock:
            seg.holds += 1
        return Snapshot(self, seg, view.nbytes, view.readonly)

    def hold(self, seg: _Segment, borrower: int) -> int | None:
        """Lend ``seg`` to ``borrower``: the loan's token (None once the pool is closed)."""
        with self._lock:
            if self.closed or seg.fd < 0:
                return None
            token = shm.new_token()
            seg.holds += 1
            self._lent[token] = (seg, borrower)
            if len(self._lent) > LENT_MAX:
                _, (oldest, _who) = self._lent.popitem(last=False)
                oldest.tainted = True
                self._unhold(oldest)
            return token

    def release(self, tokens: tuple[int, ...] | list[int]) -> None:
        """The borrower no longer maps these loans (tokens not lent, or forgotten, are ignored)."""
        with self._lock:
            self._settle()
            for token in tokens:
                entry = self._lent.pop(token, None)
                if entry is not None:
                    self._unhold(entry[0])

    def reclaim(self, borrower: int) -> None:
        """``borrower`` died: its mappings went with it, so every loan to it ends."""
        with self._lock:
            back = [token for token, (_seg, who) in self._lent.items() if who == borrower]
        self.release(back)

    def close(self) -> None:
        """Close every descriptor (the pool ended); mappings elsewhere keep what they map."""
        with self._lock:
            self.closed = True
            for seg in self._live:
                os.close(seg.fd)
                seg.fd = -1
            self._live.clear()
            self._idle.clear()
            self._lent.clear()
            self.dropped.clear()
            self._idle_bytes = 0

    # -- under the lock ----------------------------------------------------------------------------------

    def _settle(self) -> None:
        dropped = self.dropped
        while dropped:
            self._unhold(dropped.popleft())

    def _unhold(self, seg: _Segment) -> None:
        seg.holds -= 1
        if seg.holds > 0 or seg.fd < 0:
            return
        if (
            seg.tainted
            or self._idle_bytes + seg.size > IDLE_MAX
            or len(self._idle) >= IDLE_COUNT_MAX
        ):
            self._live.discard(seg)
            os.close(seg.fd)
            seg.fd = -1
            return
        self._idle.append(seg)
        self._idle_bytes += seg.size

    def _take_idle(self, n: int) -> _Segment | None:
        best = -1
        for i, seg in enumerate(self._idle):
            if seg.size >= n and (best < 0 or seg.size < self._idle[best].size):
                best = i
        if best < 0:
            return None
        seg = self._idle.pop(best)
        self._idle_bytes -= seg.size
        self._live.discard(seg)  # being filled: `_filled` adds it back
        return seg
