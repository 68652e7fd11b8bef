"""Recalling a job without killing its worker: the worker's side.

Runs in each worker process, main thread (the signal handler too: Python runs handlers there). The parent's
scheduler thread recalls a job (`Worker.recall`, used for a backup copy that lost its race) by writing the
job's id to the worker's shared *recall* value, then sending `RECALL_SIGNAL`. The worker raises `Recalled` into
the job if that job is the one running, and goes on with its next job; the job's outcome is dropped by the
parent.

Where the exception lands:

- The handler raises only while ``in_job`` is set, which `worker._run_job` sets around the job's own call,
  inside the ``try`` that turns whatever the job raises into its outcome. So the exception never escapes into
  the worker's loop: raised in that ``finally``, it is still caught there.
- The signal can come before the job's own code began: the parent acts on the job's start report, which the
  worker sends before it runs the job. The recall value stays set, and `check_recall`, called as the job
  begins, raises then.
- A job that catches `BaseException`, or runs C code that never returns to the interpreter, keeps running;
  the parent kills the worker after a grace period, as it kills one for a timeout.

Imports the standard library only (a worker imports this module).
"""

from __future__ import annotations

import signal
from typing import Any, Final

__all__ = ["RECALL_SIGNAL", "Recalled", "accept_recalls", "check_recall", "in_job"]

#: The signal that tells a worker to look at its recall value. Not SIGUSR1: that one asks for its stacks.
RECALL_SIGNAL: Final = signal.SIGUSR2

#: Whether the main thread is in a job's own code now (the handler raises only there).
in_job = [False]
#: The worker's slot (the id of the job it runs) and recall values, shared with the parent.
_values: list[Any] = [None, None]


class Recalled(BaseException):
    """Raised into a job the parent recalled: a `BaseException`, so that the job's ``except Exception`` does
    not keep it running."""


def accept_recalls(slot: Any, recall: Any) -> None:
    """Install the handler (worker, main thread, before any job)."""
    _values[0], _values[1] = slot, recall
    signal.signal(RECALL_SIGNAL, _on_signal)


def check_recall() -> None:
    """Raise `Recalled` if the parent recalls the job this worker runs (main thread, in the job only)."""
    slot, recall = _values
    job_id = recall.value
    if job_id and job_id == slot.value:
        recall.value = 0
        raise Recalled(job_id)


def _on_signal(signum: int, frame: Any) -> None:
    if in_job[0]:
        check_recall()
