"""`Report`: what a backend tells the pool about its jobs and workers.

A backend reports through the *sink*, one callable that takes a list of reports (a list, because one call per
report would cost more than a tiny job). Every report has the same six fields, and each field means the same
for every kind:

==============  ===========================================================================================
field           meaning
==============  ===========================================================================================
``kind``        a `ReportKind`
``job``         the `Job` the report is about (None for worker and pool reports)
``worker``      the worker's id within the backend (a Dask worker's address), where known
``pid``         the worker's process id, where known
``value``       ``SUCCEEDED``: the result; ``LOG``: the `logging.LogRecord`; ``OUTPUT``: ``(stream, text)``;
                ``WORKER_DOWN``: the exit code, or a `WorkerExit` (exit code and why);
                ``STOPPED``: the worker's stacks when the job was stopped running, or None; otherwise None
``error``       ``FAILED``: the job's exception; ``BROKEN``: why the backend cannot run jobs; otherwise None
==============  ===========================================================================================

``SKIPPED`` reports a job whose future was cancelled before it was sent to a worker; ``STOPPED`` one stopped on
request. ``BACKUP_STARTED`` says a backup copy of the job's running attempt began on ``worker`` (see
`taskpool._core.backup`); it is not a new attempt, and the attempt still gets one outcome. Each job the backend takes gets exactly one of ``SUCCEEDED``/``FAILED``/``STOPPED``/``SKIPPED`` per
attempt, unless the backend is terminated. ``BROKEN`` says the backend cannot run jobs any more (an
initializer that fails): the pool fails every pending job with it.

A report is a plain tuple typed by the `Report` alias, not a named tuple: the process backend makes one per job
on its hot path, and a tuple is built several times faster (measured: about 80 ns against 370 ns through
``tuple.__new__`` of a NamedTuple and 680 ns through its constructor). Read its fields by unpacking it whole.

Reports are made on the backend's own threads (for the inline backend, the caller's) and read on the pool's
event thread. The sink never blocks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from .job import Job

__all__ = ["Report", "ReportKind", "Sink", "WorkerExit"]


class ReportKind(enum.IntEnum):
    """What a `Report` says happened."""

    STARTED = 0
    SUCCEEDED = 1
    FAILED = 2
    STOPPED = 3
    SKIPPED = 4
    WORKER_UP = 5
    WORKER_DOWN = 6
    LOG = 7
    OUTPUT = 8
    BROKEN = 9
    BACKUP_STARTED = 10


#: ``(kind, job, worker, pid, value, error)``; see the module docstring for what each field holds.
Report: TypeAlias = tuple[
    ReportKind, "Job | None", "int | str | None", "int | None", object, "BaseException | None"
]
Sink: TypeAlias = Callable[[list[Report]], None]


class WorkerExit(NamedTuple):
    """The value of a ``WORKER_DOWN`` report from a backend that knows why its worker ended."""

    exitcode: int | None
    #: Why, in words (``"memory limit: 2.1 GB > 2.0 GB"``, ``"killed by the out-of-memory killer"``).
    reason: str | None
