"""One attempt of a job, run where the job runs, and its outcome carried back to the parent.

Every place a job runs uses this module: the process backend's workers, the thread and inline backends, Dask
workers, `spawn`, and the per-item wrapper of the ``taskpool run`` command. So a job's kinds, the running
job's identity (for log records), and the way a result or an exception is encoded for the trip back and decoded
in the parent exist once.

Runs in whichever thread or process runs the job; `decode_value` and `decode_error` run in the parent (the
process backend's scheduler thread, the Dask backend's callback thread). Like the rest of `taskpool._runtime`,
it imports the standard library and `taskpool._errors` only, so a worker process starts light.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import itertools
import operator
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import RemoteTraceback, SerializationError
from .seeding import SeedKey, leave, seeded_enter
from .serialize import Payload, dumps, dumps_payload, loads

__all__ = [
    "ITEM_INDEX",
    "JobKind",
    "call",
    "decode_error",
    "decode_value",
    "encode_error",
    "encode_value",
    "format_traceback",
    "job_here",
    "process_job",
    "thread_job",
]


class JobKind(enum.IntEnum):
    """What one job runs. An int on the wire, so that a job costs no more to send than a plain tuple."""

    #: ``fn(*args, **kwargs)``.
    CALL = 0
    #: ``[fn(x) for x in chunk]``: one chunk of a map.
    CHUNK = 1
    #: ``[fn(*x) for x in chunk]``: one chunk of a starmap.
    STARCHUNK = 2


#: The attribute `call` sets on an exception raised by one item of a chunk: the item's index in the chunk.
ITEM_INDEX = "_taskpool_item_index"


def call(
    fn: Callable[..., Any],
    kind: int,
    args: Any,
    kwargs: dict[str, Any],
    seed: SeedKey | None = None,
) -> Any:
    """Run one attempt's function: ``args`` are the call's arguments, or the chunk (a list) for the chunk kinds.

    An exception raised by one item of a chunk is tagged with the item's index in the chunk (`ITEM_INDEX`), so
    the parent can say which input failed; success pays nothing for it (the index is read from the iterator
    only when something was raised). With ``seed`` (a job of a pool made with ``seed=``), each item runs with
    its own seed current (see `taskpool._runtime.seeding`).
    """
    if seed is not None:
        return _call_seeded(fn, kind, args, kwargs, seed)
    if kind == JobKind.CALL:
        return fn(*args, **kwargs)
    items = iter(args)
    try:
        if kind == JobKind.CHUNK:
            return list(map(fn, items))
        return list(itertools.starmap(fn, items))
    except BaseException as exc:
        with contextlib.suppress(Exception):  # an exception without a __dict__ stays untagged
            setattr(exc, ITEM_INDEX, len(args) - operator.length_hint(items) - 1)
        raise


def _call_seeded(
    fn: Callable[..., Any], kind: int, args: Any, kwargs: dict[str, Any], seed: SeedKey
) -> Any:
    if kind == JobKind.CALL:
        token = seeded_enter(seed, 0)
        try:
            return fn(*args, **kwargs)
        finally:
            leave(token)
    out = []
    star = kind == JobKind.STARCHUNK
    for offset, item in enumerate(args):
        token = seeded_enter(seed, offset)
        try:
            out.append(fn(*item) if star else fn(item))
        except BaseException as exc:
            with contextlib.suppress(Exception):
                setattr(exc, ITEM_INDEX, offset)
            raise
        finally:
            leave(token)
    return out


# -- which job runs here ------------------------------------------------------------------------------------

#: The job the current thread runs, ``(job id, name)``, on backends whose jobs run in threads of a process
#: that also runs other code (thread, inline, Dask). A context variable, so that concurrent jobs do not mix.
thread_job: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "taskpool_thread_job", default=None
)

#: The job a worker process runs, ``[job id, name]`` (``[0, None]`` between jobs). Process-wide rather than per
#: thread, so that records logged by threads the job started are tagged with it too; a list, so that the
#: worker sets it around each job with two stores.
process_job: list[Any] = [0, None]


def job_here() -> tuple[int | None, str | None]:
    """The ``(job id, name)`` of the job this thread or process runs now, or ``(None, None)`` outside jobs."""
    job = thread_job.get()
    if job is not None:
        return job
    job_id, name = process_job
    if job_id:
        return job_id, name
    return None, None


# -- outcomes ---------------------------------------------------------------------------------------------


def format_traceback(exc: BaseException, skip: int = 0) -> str:
    """The traceback of ``exc`` as text, leaving out its ``skip`` outermost frames (taskpool's own)."""
    tb = exc.__traceback__
    for _ in range(skip):
        if tb is None or tb.tb_next is None:
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def encode_value(value: Any, name: str | None, split: bool = True) -> Payload:
    """Pickle a job's result for the trip to the parent (where the job runs).

    With ``split``, large buffers (a bytes-like result, numpy arrays anywhere in it) travel out of band, not
    copied into the pickle.

    Raises:
        SerializationError: the result does not pickle (the job fails with it, naming the result).
    """
    if split:
        return dumps_payload(value, "result", "worker", name)
    return dumps(value, "result", "worker", name)


def encode_error(exc: BaseException, name: str | None, skip: int = 0) -> tuple[bytes, str]:
    """Pickle a job's exception for the trip to the parent: ``(pickle, traceback text)``.

    The traceback travels as text (it does not pickle). An exception that does not pickle is replaced by a
    `SerializationError` that names it, so the parent always learns what the job raised.
    """
    tb = format_traceback(exc, skip)
    exc.__traceback__ = None
    try:
        return dumps(exc, "exception", "worker", name), tb
    except SerializationError as err:
        reason = f"{err.reason}; the job raised {type(exc).__name__}: {exc}"
        stand_in = SerializationError("exception", "pickle", "worker", name, reason)
        return dumps(stand_in, "exception", "worker"), tb


def decode_value(payload: Payload, name: str | None) -> tuple[bool, Any]:
    """Unpickle a result in the parent: ``(True, value)``, or ``(False, SerializationError)``.

    Anything unpickling raises, ``SystemExit`` and ``KeyboardInterrupt`` included, fails this job only: it is
    the job's data misbehaving, not a request to the parent.
    """
    try:
        return True, loads(payload)
    except BaseException as exc:
        return False, SerializationError(
            "result", "unpickle", "parent", name, f"{type(exc).__name__}: {exc}"
        )


def decode_error(payload: Payload, tb: str | None, name: str | None) -> BaseException:
    """Rebuild a job's exception in the parent, with the worker's traceback text as its ``__cause__``.

    An exception that cannot be rebuilt here becomes a `SerializationError` that says what the job raised.
    """
    error: BaseException
    try:
        loaded = loads(payload)
        if not isinstance(loaded, BaseException):
            raise TypeError(f"expected an exception, got {type(loaded).__name__}")
        error = loaded
    except BaseException as exc:
        last = _last_line(tb)
        error = SerializationError(
            "exception",
            "unpickle",
            "parent",
            name,
            f"{type(exc).__name__}: {exc}; the job raised {last}",
        )
    if tb:
        error.__cause__ = RemoteTraceback(tb)
    return error


def _last_line(tb: str | None) -> str:
    lines: Sequence[str] = tb.strip().rsplit("\n", 1) if tb else ()
    return lines[-1] if lines else "?"
