"""The wire protocol between the scheduler thread and a worker process: frames and the messages in them.

Each worker has two one-way OS pipes: *jobs* (parent → worker) and *results* (worker → parent). Two simplex
pipes rather than one duplex socket, so that the parent's end can be non-blocking while the worker's stays
blocking: the scheduler thread never blocks on a write (a worker busy in C code that holds the GIL cannot
stall it), and a worker never has to poll.

A frame is ``!Q`` total length, ``!I`` buffer count, ``!Q`` per buffer length (its top bit set when the
buffer is read-only), then a pickle (protocol 5) of a list of messages (one batch), then the out-of-band
buffers. Large payloads (pickled arguments and results) travel as out-of-band buffers, so they are written
from where they lie instead of being copied into the frame's pickle, and are read straight into the objects
they become (`taskpool._backends.process.landing`).

A message is a plain tuple whose first item is its `Op` as a plain int: a named tuple pickles several times
slower, and an `Op` member would pickle as a reference to its class. Each message has a type alias below that
documents its fields; they are built by the functions of this module and read by unpacking a value annotated
with the alias whole, so that mypy checks every reader against the layout defined here.

Runs in the scheduler thread of the parent (`FrameReader`, `FrameWriter`, `encode`) and in the main and
flusher threads of a worker process (`read_frame`, `write_frame`). Imports the standard library and
`taskpool._runtime` only, so that a worker starts light.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import itertools
import os
import pickle
import sys
from collections import deque
from typing import Any, Final, TypeAlias

from ..._runtime.seeding import SeedKey
from ..._runtime.serialize import OUT_OF_BAND_MIN, Payload
from .landing import HEAD as _HEAD
from .landing import LEN as _LEN
from .landing import READONLY, Body, lengths, read_frame

__all__ = [
    "FLAG_BEGUN",
    "FLAG_STARTED",
    "FLAG_SYNC",
    "OP_DEFINE",
    "OP_FORGET",
    "OP_INIT_FAILED",
    "OP_LOG",
    "OP_OVER_MEMORY",
    "OP_QUIT",
    "OP_READY",
    "OP_RESULT",
    "OP_RUN",
    "OP_SKIPPED",
    "OP_STARTED",
    "QUIT",
    "DefineMessage",
    "ForgetMessage",
    "FrameReader",
    "FrameWriter",
    "InitFailedMessage",
    "LogMessage",
    "Op",
    "OverMemoryMessage",
    "QuitMessage",
    "ReadyMessage",
    "ResultMessage",
    "RunMessage",
    "SkippedMessage",
    "StartedMessage",
    "decode",
    "define_message",
    "encode",
    "enlarge_pipe",
    "forget_message",
    "init_failed_message",
    "log_message",
    "over_memory_message",
    "read_frame",
    "ready_message",
    "result_message",
    "run_message",
    "skipped_message",
    "started_message",
    "wrap",
    "write_frame",
]


class Op(enum.IntEnum):
    """What a message asks or says: its first item (sent as the plain int, see the module docstring)."""

    DEFINE = 0
    RUN = 1
    QUIT = 2
    READY = 3
    INIT_FAILED = 4
    STARTED = 5
    RESULT = 6
    LOG = 7
    # 8 was OUTPUT: what workers print now travels in pipes of its own (see `capture`).
    FORGET = 9
    SKIPPED = 10
    OVER_MEMORY = 11


# Plain ints, what travels and what readers compare with: bound once, as they are used per message.
OP_DEFINE: Final = int(Op.DEFINE)
OP_RUN: Final = int(Op.RUN)
OP_QUIT: Final = int(Op.QUIT)
OP_READY: Final = int(Op.READY)
OP_INIT_FAILED: Final = int(Op.INIT_FAILED)
OP_STARTED: Final = int(Op.STARTED)
OP_RESULT: Final = int(Op.RESULT)
OP_LOG: Final = int(Op.LOG)
OP_FORGET: Final = int(Op.FORGET)
OP_SKIPPED: Final = int(Op.SKIPPED)
OP_OVER_MEMORY: Final = int(Op.OVER_MEMORY)

# Job flags. FLAG_SYNC: the worker reports the start of the job and flushes results on both sides of it, so
# that the scheduler knows exactly when a job with a deadline starts and which job a crash belongs to.
FLAG_SYNC: Final = 1
# FLAG_STARTED: the worker reports the start of the job (someone listens for job_started), without flushing
# at once: the report goes out with the next batch, or within the worker's flush interval.
FLAG_STARTED: Final = 2
# FLAG_BEGUN: the job began before, in this or another worker (a retry): withdrawing the jobs not begun, when
# the pool is left by an exception, does not skip it.
FLAG_BEGUN: Final = 4

# -- parent → worker ----------------------------------------------------------------------------------------

#: ``(OP_DEFINE, key, fn_bytes)``: remember the pickled function ``fn_bytes`` under ``key``; jobs name it by
#: key from then on, so a function travels once per worker.
DefineMessage: TypeAlias = tuple[int, int, bytes]
#: ``(OP_RUN, job_id, key, kind, payload, flags, name, seed)``: run one job: the function defined under
#: ``key``, as its `JobKind` ``kind`` says, on ``payload`` (the pickled ``(args, kwargs)``, or the pickled
#: chunk of a map); ``flags`` is a sum of ``FLAG_*``; ``name`` is the job's name, for errors and log records;
#: ``seed`` its `SeedKey` (None when the pool has no seed).
RunMessage: TypeAlias = tuple[int, int, int, int, Payload, int, "str | None", "SeedKey | None"]
#: ``(OP_FORGET, keys)``: drop the functions defined under ``keys`` (jobs sent before this still run).
ForgetMessage: TypeAlias = tuple[int, tuple[int, ...]]
#: ``(OP_QUIT,)``: finish the jobs received before this and exit.
QuitMessage: TypeAlias = tuple[int]

# -- worker → parent ----------------------------------------------------------------------------------------

#: ``(OP_READY, pid)``: the initializer ran; the worker takes jobs.
ReadyMessage: TypeAlias = tuple[int, int]
#: ``(OP_INIT_FAILED, text)``: the initializer raised (``text``: its first line, then the traceback); the
#: worker exits.
InitFailedMessage: TypeAlias = tuple[int, str]
#: ``(OP_STARTED, job_id)``: a job flagged ``FLAG_SYNC`` or ``FLAG_STARTED`` is starting now.
StartedMessage: TypeAlias = tuple[int, int]
#: ``(OP_SKIPPED, job_id)``: a job was withdrawn before it began (see `Workers.withdraw`); it never ran.
SkippedMessage: TypeAlias = tuple[int, int]
#: ``(OP_RESULT, job_id, ok, payload, tb, duration)``: a job ended. ``ok``: it returned, and ``payload`` is
#: the pickled value; otherwise ``payload`` is the pickled exception and ``tb`` its traceback text (None when
#: ``ok``). ``duration``: the seconds it ran, for the batching policy.
ResultMessage: TypeAlias = tuple[int, int, bool, Payload, "str | None", float]
#: ``(OP_LOG, job_id, record_bytes)``: a pickled `logging.LogRecord`, logged while job ``job_id`` ran (0
#: between jobs).
LogMessage: TypeAlias = tuple[int, int, bytes]
#: ``(OP_OVER_MEMORY, used)``: after its last job the worker's private memory, ``used`` bytes, is past its
#: ``max_memory_per_worker``; it runs none of the jobs it still holds and exits.
OverMemoryMessage: TypeAlias = tuple[int, int]

#: The one `QuitMessage`.
QUIT: Final[QuitMessage] = (OP_QUIT,)


def define_message(key: int, fn_bytes: bytes) -> DefineMessage:
    return (OP_DEFINE, key, fn_bytes)


def forget_message(keys: tuple[int, ...]) -> ForgetMessage:
    return (OP_FORGET, keys)


def run_message(
    job_id: int,
    key: int,
    kind: int,
    payload: Payload,
    flags: int,
    name: str | None,
    seed: SeedKey | None = None,
) -> RunMessage:
    return (OP_RUN, job_id, key, kind, payload, flags, name, seed)


def ready_message(pid: int) -> ReadyMessage:
    return (OP_READY, pid)


def init_failed_message(text: str) -> InitFailedMessage:
    return (OP_INIT_FAILED, text)


def started_message(job_id: int) -> StartedMessage:
    return (OP_STARTED, job_id)


def skipped_message(job_id: int) -> SkippedMessage:
    return (OP_SKIPPED, job_id)


def result_message(
    job_id: int, ok: bool, payload: Payload, tb: str | None, duration: float
) -> ResultMessage:
    return (OP_RESULT, job_id, ok, payload, tb, duration)


def log_message(job_id: int, record_bytes: bytes) -> LogMessage:
    return (OP_LOG, job_id, record_bytes)


def over_memory_message(used: int) -> OverMemoryMessage:
    return (OP_OVER_MEMORY, used)


# -- frames ---------------------------------------------------------------------------------------------------


# Linux lets a pipe hold up to /proc/sys/fs/pipe-max-size (1 MiB by default). A larger pipe means fewer
# context switches per large message; it costs kernel memory only while data sits in it.
PIPE_SIZE = 1024 * 1024
_LINUX_F_SETPIPE_SZ = 1031


def enlarge_pipe(fd: int) -> None:
    """Ask the kernel for a larger pipe buffer; keep the default where that is not allowed."""
    try:
        import fcntl  # imported here: a platform without it still imports this module
    except ImportError:
        return
    op = getattr(
        fcntl, "F_SETPIPE_SZ", _LINUX_F_SETPIPE_SZ if sys.platform.startswith("linux") else None
    )
    if op is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, op, PIPE_SIZE)


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
    fields = b"".join(_LEN.pack(v.nbytes | READONLY if v.readonly else v.nbytes) for v in views)
    total = _HEAD.size + len(fields) + len(main) + sum(v.nbytes for v in views)
    return [_HEAD.pack(total, len(views)), fields, main, *views]


def decode(body: memoryview, nbuf: int, total: int) -> list[Any]:
    """Decode a frame's body (everything after the header)."""
    if nbuf == 0:
        messages: list[Any] = pickle.loads(body)
        return messages
    sizes = [raw & ~READONLY for raw in lengths(body, nbuf)]
    end = total - _HEAD.size
    bufs = []
    for n in reversed(sizes):
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


# The scheduler reads this much at a time; frames larger than this are read straight into the objects they
# become instead (a `Body`: no reassembly, and large buffers are never copied).
_READ_CHUNK = 256 * 1024


class FrameReader:
    """Reassembles frames from a non-blocking pipe (scheduler thread only).

    It never blocks: a worker that dies, or a job that forked a child which kept the pipe open, cannot stall
    the scheduler in the middle of a frame.
    """

    __slots__ = ("_big", "_buf", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
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
                    frames.append(big.decode())
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
                    # A copy, so that buf can shrink under it.
                    frame = bytes(buf[_HEAD.size : total])
                    del buf[:total]
                    frames.append(decode(memoryview(frame), nbuf, total))
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
