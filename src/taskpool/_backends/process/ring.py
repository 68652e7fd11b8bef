"""The outcome ring: outcomes of finished jobs, kept where the parent can still read them after a worker dies.

A worker sends outcomes in batches (see `worker`), so at any moment a few of its finished jobs may have
outcomes that are not in the results pipe yet. If the process dies then (a later job calls ``os._exit``, a
segfault, the OOM killer), those outcomes would die with it, and the jobs would run a second time. So each
outcome is also copied into this ring, a block of shared memory (``ctx.RawArray``, allocated by the parent
like the worker's slot, so it works under fork, forkserver and spawn) that outlives the process.

Layout: the first 8 bytes are the *commit word*, the number of bytes of whole entries after it; entries follow
back to back. An entry is a fixed header (job id, duration, payload length, traceback length or -1 for none,
ok flag) then the pickled payload, then the traceback text (UTF-8). The worker writes an entry past the
committed end, then advances the commit word: one aligned 8-byte store, the last thing it does, so an entry
the process died in the middle of lies past the commit word and is never read. After each frame is written
to the results pipe, the worker sets the commit word back to 0: what the ring held is in the pipe now.

The parent reads the ring only once the process has ended (`read_outcomes`), after the pipe: an outcome in
both (death between the pipe write and the reset) is taken once, by job id. Reading is defensive: an entry
that does not lie wholly within the committed bytes ends the reading.

Runs in the main and flusher threads of a worker process (`OutcomeRing`, under the outbox lock) and in the
scheduler thread of the parent (`new_ring`, `read_outcomes`). Imports the standard library and the protocol
module only, so that a worker starts light.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .protocol import ResultMessage, result_message

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = ["MAX_ENTRY", "RING_SIZE", "OutcomeRing", "new_ring", "read_outcomes"]

# Bytes of shared memory per worker. More: more small outcomes between two pipe writes (which the batch end
# and the flush interval bound anyway); less: memory. 1024 tiny outcomes (the most a worker holds) take ~30 KiB.
RING_SIZE = 64 * 1024
# The largest entry the ring takes. A larger outcome goes to the pipe at once, before the next job starts: a
# write is cheap next to copying that many bytes, and it would crowd out many small outcomes.
MAX_ENTRY = 8 * 1024

_COMMIT = struct.Struct("=q")
# job id, duration, payload length, traceback length (-1: none), ok.
_ENTRY = struct.Struct("=qdiiB")
_DATA = _COMMIT.size
_HEAD = _ENTRY.size
_pack_head = _ENTRY.pack_into
# Packers of a header and its bytes in one call, by the bytes' length (one call per job instead of two), for
# the lengths tiny outcomes have: the ones below this. A longer entry packs its header, then copies its bytes.
_packers: dict[int, Callable[..., None]] = {}
_CACHED_BELOW = 256


def new_ring(ctx: BaseContext) -> Any:
    """A zeroed (empty) ring in shared memory, to pass to a worker process (scheduler thread)."""
    return ctx.RawArray(ctypes.c_ubyte, RING_SIZE)


class OutcomeRing:
    """The worker's writer of a ring. Its owner (the `Outbox`) calls it under the outbox lock."""

    __slots__ = ("_commit", "_end", "_limit", "_view")

    def __init__(self, buffer: Any) -> None:
        """Write into ``buffer``: the `new_ring` array (or any writable buffer, in tests)."""
        self._view = memoryview(buffer).cast("B")
        self._limit = len(self._view)
        # A ctypes view of the commit word: assigning ``.value`` is one aligned store (the array is 8-aligned).
        self._commit = ctypes.c_int64.from_buffer(buffer)
        self._end = _DATA + self._commit.value

    def append(
        self, job_id: int, ok: bool, payload: bytes, tb: str | None, duration: float
    ) -> bool:
        """Copy one outcome in and commit it. Returns False, leaving the ring as it was, when the entry is
        larger than `MAX_ENTRY` or there is no room left: the caller sends the outcome by pipe now."""
        # Runs once per job: for a tiny outcome, one pack (header and bytes at once) and one store.
        size = len(payload)
        if tb is None:
            tb_size = -1
        else:
            tb_data = tb.encode("utf-8", "replace")
            tb_size = len(tb_data)
            payload += tb_data
        start = self._end
        n = len(payload)
        end = start + _HEAD + n
        if end > self._limit or end - start > MAX_ENTRY:
            return False
        pack = _packers.get(n)
        if pack is not None:
            pack(self._view, start, job_id, duration, size, tb_size, ok, payload)
        else:
            _pack_head(self._view, start, job_id, duration, size, tb_size, ok)
            self._view[start + _HEAD : end] = payload
            if n < _CACHED_BELOW:
                _packers[n] = struct.Struct(f"{_ENTRY.format}{n}s").pack_into
        self._end = end
        self._commit.value = end - _DATA  # last: the entry is whole before it counts
        return True

    def clear(self) -> None:
        """Forget every entry: their outcomes are in the results pipe now."""
        self._commit.value = 0
        self._end = _DATA


def read_outcomes(buffer: Any) -> list[ResultMessage]:
    """The committed outcomes in a ring, oldest first, as result messages (scheduler thread, after the
    worker's death; pure otherwise). An entry not wholly within the committed bytes is ignored."""
    view = memoryview(buffer).cast("B")
    (committed,) = _COMMIT.unpack_from(view, 0)
    stop = _DATA + committed
    if committed <= 0 or stop > len(view):
        return []
    messages: list[ResultMessage] = []
    pos = _DATA
    while pos + _ENTRY.size <= stop:
        job_id, duration, size, tb_size, ok = _ENTRY.unpack_from(view, pos)
        start = pos + _ENTRY.size
        end = start + size + max(tb_size, 0)
        if size < 0 or tb_size < -1 or end > stop:
            break
        tb = None if tb_size < 0 else bytes(view[start + size : end]).decode("utf-8", "replace")
        messages.append(
            result_message(job_id, bool(ok), bytes(view[start : start + size]), tb, duration)
        )
        pos = end
    return messages
