"""What a job prints and logs, made ready for the trip to the parent.

Printed text is cut into whole lines (`LineSplitter`), so that lines from two workers never interleave in the
parent; log records are made picklable the way `logging.handlers.QueueHandler` prepares them
(`prepare_record`). The process backend (its workers' records, and the lines its scheduler reads from their
stdout and stderr pipes) and Dask workers use these.

Runs in the process that runs the job, in whichever thread prints or logs; `LineSplitter` also in the process
backend's scheduler thread. Imports the standard library and
`taskpool._errors` only.
"""

from __future__ import annotations

import logging
import pickle

__all__ = ["LineSplitter", "prepare_record"]


class LineSplitter:
    """Cuts a stream of written text into whole lines; the caller serialises calls (one writer at a time)."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = ""

    def feed(self, text: str) -> str:
        """Take written text; return the whole lines it completes ("" when none), keep the rest."""
        text = self._partial + text
        cut = text.rfind("\n") + 1
        self._partial = text[cut:]
        return text[:cut]

    @property
    def pending(self) -> bool:
        """Whether an unfinished line is kept."""
        return bool(self._partial)

    def rest(self) -> str:
        """Return the unfinished last line (at the end of a job or on flush) and forget it."""
        rest, self._partial = self._partial, ""
        return rest


def prepare_record(record: logging.LogRecord, job_id: int | None, name: str | None) -> bytes:
    """Pickle a log record made in a job, tagged with the job, for the parent's handlers.

    The message and the traceback become text here, where the arguments and the exception still exist. An
    attribute that does not pickle (added with ``extra=``) travels as its ``repr``: the record is never lost
    for the sake of one attribute.
    """
    record.message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.msg, record.args, record.exc_info = record.message, None, None
    if "job_id" not in record.__dict__:
        record.job_id, record.job_name = job_id, name
    try:
        return pickle.dumps(record, protocol=5)
    except Exception:
        for key, value in list(record.__dict__.items()):
            try:
                pickle.dumps(value, protocol=5)
            except Exception:
                record.__dict__[key] = repr(value)
        return pickle.dumps(record, protocol=5)
