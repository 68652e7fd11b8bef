"""`get_logger`: one logging call that works in jobs and in the parent.

How a record made in a job reaches the user's handlers:

- process backend: the worker's root logger has one handler, which formats the message text in the worker,
  tags the record with ``job_id`` and ``job_name``, and sends it whole to the parent through the worker's own
  pipe (no lock is shared between processes, so a killed worker cannot leave one held). The parent's event
  thread hands it to ``logging.getLogger(record.name).handle(record)``: the parent's levels and handlers
  decide, and ``%(process)d`` is the worker's pid.
- thread and inline backends: jobs run in the parent, so records go straight to the handlers; `JobFilter`
  tags them with the job the calling thread is running (`job_here`, set by the backends around a job).

`JobFilter`, which `get_logger` installs on the loggers it returns, gives every record that passes through them
``job_id`` and ``job_name`` (None outside a job), so a format string with ``%(job_id)s`` never fails.
Runs in whichever thread or process logs.
"""

from __future__ import annotations

import logging

from .attempt import job_here

__all__ = ["JobFilter", "get_logger"]


class JobFilter(logging.Filter):
    """Gives a record ``job_id`` and ``job_name`` attributes (None outside a job) unless it has them.

    Add it to a handler (``handler.addFilter(JobFilter())``) whose format uses ``%(job_id)s`` and that also
    receives records from loggers not made by `get_logger`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "job_id" not in record.__dict__:
            record.job_id, record.job_name = job_here()
        return True


_FILTER = JobFilter()


def get_logger(name: str | None = None) -> logging.Logger:
    """The logger ``name`` (as `logging.getLogger`), for use in jobs and in the parent alike.

    In a job, its records are emitted by the parent's handlers, whole, with ``job_id``, ``job_name`` and the
    worker's ``process`` id available to formatters; in the parent, outside jobs, ``job_id`` is None. It needs
    no pool: before one exists it is an ordinary logger. Levels and handlers are configured in the parent as
    usual; a worker sends what passes the levels the parent had when the worker started.

    Args:
        name: the logger's name, usually ``__name__``; None for the root logger.
    """
    logger = logging.getLogger(name)
    logger.addFilter(_FILTER)  # a no-op when it is there already
    return logger
