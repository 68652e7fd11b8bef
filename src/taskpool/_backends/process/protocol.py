"""The wire protocol between the scheduler thread and a worker process.

Each worker has two one-way OS pipes: *jobs* (parent → worker) and *results* (worker → parent). Two simplex
pipes rather than one duplex socket, so that the parent's end can be non-blocking while the worker's stays
blocking: the scheduler thread never blocks on a write (a worker busy in C code that holds the GIL cannot
stall it), and a worker never has to poll.

A frame is ``!Q`` total length, ``!I`` buffer count, ``!Q`` per buffer length, then a pickle (protocol 5),
then the out-of-band buffers. Large payloads (pickled arguments and results) travel as out-of-band buffers, so
they are written from where they lie instead of being copied into the frame's pickle.

Messages, parent → worker (a frame holds a list of them, one batch):
    (OP_DEFINE, key, fn_bytes)            remember a function under ``key``
    (OP_RUN, seq, key, kind, args, flags) run a job; ``args`` is the pickled (args, kwargs) or chunk
    (OP_QUIT,)                            finish the batch and exit

Messages, worker → parent (a frame holds a list of them):
    (OP_READY, pid)                              the initializer ran; the worker takes jobs
    (OP_INIT_FAILED, text)                       the initializer raised; the worker exits
    (OP_STARTED, seq)                            a job flagged FLAG_SYNC is starting now
    (OP_RESULT, seq, ok, payload, tb, duration)  payload: the pickled value or exception; tb: traceback text
    (OP_LOG, seq, record_bytes)                  a pickled logging.LogRecord from a job
    (OP_OUTPUT, stream, text)                    whole lines the worker printed ("stdout"/"stderr")
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import pickle
import struct
from collections import deque
from typing import Any

from ..._runtime.serialize import OUT_OF_BAND_MIN

OP_DEFINE = 0
OP_RUN = 1
OP_QUIT = 2
OP_READY = 3
OP_INIT_FAILED = 4
OP_STARTED = 5
OP_RESULT = 6
OP_LOG = 7
OP_OUTPUT = 8

# Job flags. FLAG_SYNC: the worker reports the start of the job and flushes results on both sides of it, so
# that the scheduler knows exactly when a job with a deadline starts and which job a crash belongs to.
FLAG_SYNC = 1
# FLAG_STARTED: the worker reports the start of the job (someone listens for job_started), without flushing
# at once: the report goes out with the next batch, or within the worker's flush interval.
FLAG_STARTED = 2

_HEAD = struct.Struct("!QI")
_LEN = struct.Struct("!Q")

# Linux lets a pipe hold up to /proc/sys/fs/pipe-max-size (1 MiB by default). A larger pipe means fewer
# context switches per large message; it costs kernel memory only while data sits in it.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031 if os.uname().sysname == "Linux" else None)
PIPE_SIZE = 1024 * 1024


def enlarge_pipe(fd: int) -> None:
    """Ask the kernel for a larger pipe buffer; keep the default where that is not allowed."""
    if _F_SETPIPE_SZ is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


def wrap(payload: bytes) -> Any:
    """Mark a pickled payload to travel out of band when it is large (it is not copied into the frame)."""
    return pickle.PickleBuffer(payload) if len(payload) >= OUT_OF_BAND_MIN else payload


def encode(messages: list[Any]) -> list[bytes | memoryview]:
    """Encode a batch of messages as the pieces of one frame (header first)."""
    buffers: list[pickle.PickleBuffer] = []
    main = pickle.dumps(messages, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return [_HEAD.pack(len(main) + _HEAD.size, 0), main]
    views = [b.raw() for b in buffers]
    lengths = b"".join(_LEN.pack(v.nbytes) for v in views)
    total = _HEAD.size + len(lengths) + len(main) + sum(v.nbytes for v in views)
    return [_HEAD.pack(total, len(views)), lengths, main, *views]


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


def read_frame(fd: int) -> list[Any]:
    """Read one frame from a blocking pipe and decode its batch of messages.

    Raises:
        EOFError: the writer closed its end (it exited or was killed), possibly mid-frame.
    """
    total, nbuf = _HEAD.unpack(_read_exact(fd, _HEAD.size))
    return decode(memoryview(_read_exact(fd, total - _HEAD.size)), nbuf, total)


def decode(body: memoryview, nbuf: int, total: int) -> list[Any]:
    """Decode a frame's body (everything after the header)."""
    if nbuf == 0:
        messages: list[Any] = pickle.loads(body)
        return messages
    lengths = [_LEN.unpack_from(body, i * _LEN.size)[0] for i in range(nbuf)]
    end = total - _HEAD.size
    bufs = []
    for n in reversed(lengths):
        bufs.append(body[end - n : end])
        end -= n
    bufs.reverse()
    messages = pickle.loads(body[nbuf * _LEN.size : end], buffers=bufs)
    return messages


def write_frame(fd: int, messages: list[Any]) -> None:
    """Write one frame to a blocking pipe (the worker's side)."""
    pieces = encode(messages)
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

    __slots__ = ("fd", "pending")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending: deque[memoryview] = deque()

    def queue(self, messages: list[Any]) -> None:
        self.pending.extend(memoryview(p).cast("B") for p in encode(messages))

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


# The scheduler reads this much at a time; frames larger than this are read straight into a buffer of their
# own size instead (one copy, no reassembly).
_READ_CHUNK = 256 * 1024


class FrameReader:
    """Reassembles frames from a non-blocking pipe (scheduler thread only).

    It never blocks: a worker that dies, or a job that forked a child which kept the pipe open, cannot stall
    the scheduler in the middle of a frame.
    """

    __slots__ = ("_big", "_buf", "_got", "_nbuf", "_total", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._buf = bytearray()
        self._big: bytearray | None = None
        self._got = 0
        self._nbuf = 0
        self._total = 0

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
                    k = os.readv(fd, [memoryview(big)[self._got :]])
                except (BlockingIOError, InterruptedError):
                    return frames
                if k == 0:
                    # Hand these over first; the pipe stays at EOF, so the next call raises.
                    if frames:
                        return frames
                    raise EOFError("the worker closed its results pipe in the middle of a frame")
                self._got += k
                if self._got == len(big):
                    self._big = None
                    frames.append(decode(memoryview(big), self._nbuf, self._total))
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
                    frame = bytes(
                        buf[_HEAD.size : total]
                    )  # a copy, so that buf can shrink under it
                    del buf[:total]
                    frames.append(decode(memoryview(frame), nbuf, total))
                elif total > _READ_CHUNK:
                    body = bytearray(total - _HEAD.size)
                    have = len(buf) - _HEAD.size
                    body[:have] = buf[_HEAD.size :]
                    buf.clear()
                    self._big, self._got, self._nbuf, self._total = body, have, nbuf, total
                    break
                else:
                    break
