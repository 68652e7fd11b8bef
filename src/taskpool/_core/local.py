"""One attempt run in this process: the attempt loop of the backends whose jobs run in the parent.

The thread backend calls `run_attempt` from its job threads, the inline backend from the submitting thread.
Jobs run with nothing pickled, so lambdas and unpicklable arguments work, and log records they make are tagged
with the job through `taskpool._runtime.attempt.thread_job`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .._runtime.attempt import JobKind, call, thread_job
from .reports import Report, ReportKind, Sink

if TYPE_CHECKING:
    from .job import Job

__all__ = ["SameProcessSharing", "run_attempt"]

T = TypeVar("T")


class SameProcessSharing:
    """``pool.share`` and ``pool.shared.array`` where jobs run in this process: nothing needs sharing."""

    def share(self, obj: T) -> T:
        """The object itself: jobs in this process see it as it is."""
        return obj

    def shared_array(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A plain zeroed numpy array: jobs in this process write it in place."""
        import numpy as np  # here: numpy is needed only by programs that ask for an array

        return np.zeros(shape, dtype)


def run_attempt(job: Job, worker: int, sink: Sink, want_started: bool) -> None:
    """Run one attempt of ``job`` in the calling thread and report its outcome to ``sink``.

    A job whose future was cancelled before it began is reported SKIPPED and not run. Whatever the job
    raises, `BaseException` included, becomes its FAILED report: it is the job's outcome, not this thread's.
    """
    if job.attempt == 1 and not job.future.set_running_or_notify_cancel():
        sink([(ReportKind.SKIPPED, job, worker, None, None, None)])
        return
    if want_started:
        sink([(ReportKind.STARTED, job, worker, None, None, None)])
    args = job.args if job.kind == JobKind.CALL else job.args[0]
    token = thread_job.set((job.id, job.name))
    report: Report
    try:
        value = call(job.fn, job.kind, args, job.kwargs, job.seed)
    except BaseException as exc:
        report = (ReportKind.FAILED, job, worker, None, None, exc)
    else:
        report = (ReportKind.SUCCEEDED, job, worker, None, value, None)
    finally:
        thread_job.reset(token)
    sink([report])
