"""The wire protocol between the scheduler thread and a worker process: frames and the messages in them.

Each worker has two one-way OS pipes: *jobs* (parent → worker) and *results* (worker → parent). Two simplex
pipes rather than one duplex socket, so that the parent's end can be non-blocking while the worker's stays
blocking: the scheduler thread never blocks on a write (a worker busy in C code that holds the GIL cannot
stall it), and a worker never has to poll.

Messages travel in frames (`taskpool._backends.process.frames`, re-exported here): a batch of messages per
frame, large buffers out of band, through the pipe or shared memory.

A message is a plain tuple whose first item is its `Op` as a plain int: a named tuple pickles several times
slower, and an `Op` member would pickle as a reference to its class. Each message has a type alias below that
documents its fields; they are built by the functions of this module and read by unpacking a value annotated
with the alias whole, so that mypy checks every reader against the layout defined here.

Runs in the scheduler thread of the parent and in the main and flusher threads of a worker process. Imports
the standard library and `taskpool._runtime` only, so that a worker starts light.
"""

from __future__ import annotations

import contextlib
import enum
import pickle
import sys
from typing import Any, Final, TypeAlias

from ..._runtime.seeding import SeedKey
from ..._runtime.serialize import OUT_OF_BAND_MIN, Payload
from .frames import FrameReader as FrameReader
from .frames import FrameWriter as FrameWriter
from .frames import Lend as Lend
from .frames import decode as decode
from .frames import encode as encode
from .frames import write_frame as write_frame
from .landing import read_frame as read_frame

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
    "OP_RELEASE",
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
    "Lend",
    "LogMessage",
    "Op",
    "OverMemoryMessage",
    "QuitMessage",
    "ReadyMessage",
    "ReleaseMessage",
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
    "release_message",
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
    RELEASE = 12


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
OP_RELEASE: Final = int(Op.RELEASE)

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

# -- both ways ----------------------------------------------------------------------------------------------

#: ``(OP_RELEASE, tokens)``: the sender no longer uses the shared memory segments the receiver lent it under
#: ``tokens`` (see `taskpool._backends.process.segments`): the receiver may fill them again.
ReleaseMessage: TypeAlias = tuple[int, tuple[int, ...]]

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


def release_message(tokens: tuple[int, ...]) -> ReleaseMessage:
    return (OP_RELEASE, tokens)


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
