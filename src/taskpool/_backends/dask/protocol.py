"""The messages between a Dask worker running a job and the parent: the STARTED event and the `Envelope`.

Two messages cross the process boundary for each attempt, both through Dask:

* when a worker begins the attempt, a Dask event on the pool's topic (`started_topic`), sent through the
  scheduler: ``[task key, worker address, pid]``, made by `started_event` and read by `read_started`;
* when the attempt ends, its task's return value: an `Envelope`, which Dask pickles and keeps on the worker until
  the parent fetches it.

Built in Dask worker processes (the task thread that runs the job) and read in the parent (the client's
event-loop thread and Dask's callback thread). Imports the standard library only.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

__all__ = ["Envelope", "Status", "read_started", "started_event", "started_topic"]


class Status(enum.IntEnum):
    """How an attempt ended on its worker: what an `Envelope`'s ``data`` holds."""

    #: The job returned: ``data`` is its pickled result.
    OK = 0
    #: The job raised: ``data`` is its pickled exception, ``traceback`` the worker's traceback text.
    ERROR = 1
    #: The pool's initializer failed on this worker, so the job did not run: ``data`` is the failure as text.
    INIT_FAILED = 2


class Envelope(NamedTuple):
    """What a Dask task returns for one attempt: its outcome and what the job logged and printed.

    The result or exception travels pickled already, so that a part that does not pickle is named where the
    job ran rather than failing inside Dask's own machinery. A named tuple rather than a plain one costs nothing
    that counts here: there is one per job, and Dask pickles it anyway.
    """

    status: Status
    #: The pickled result or exception, or the initializer's failure (see `Status`).
    data: Any
    #: The traceback text of the exception the job raised ("" otherwise).
    traceback: str
    #: The pickled `logging.LogRecord` objects the job's thread made, in order.
    records: list[bytes]
    #: What the job's thread printed: ``(stream, whole lines)``, consecutive writes to a stream joined.
    output: list[tuple[str, str]]
    #: The Dask worker's address.
    worker: str
    #: The Dask worker's process id.
    pid: int


def started_topic(token: str) -> str:
    """The Dask event topic on which the workers of the pool ``token`` say that they begin a task."""
    return f"taskpool-started-{token}"


def started_event(key: str, worker: str, pid: int) -> list[Any]:
    """The message a worker sends when it begins the task ``key`` (plain data: it goes through the scheduler)."""
    return [key, worker, pid]


def read_started(event: Any) -> tuple[str, str, int] | None:
    """``(key, worker, pid)`` from a Dask event ``(time, message)`` on the topic, or None if malformed."""
    try:
        key, worker, pid = event[1]
    except Exception:
        return None
    return key, worker, pid
