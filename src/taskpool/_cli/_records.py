"""The lines ``taskpool run`` writes: one JSON record per input, ok with its result or failed with an error.

A record says which input it is: ``index`` (inputs counted from 0) and ``line`` (the input's 1-based line
number in JSON Lines input, blank lines included) or ``value`` (the ``--range`` value)::

    {"index": 0, "line": 1, "ok": true, "result": 111}
    {"index": 0, "value": 27, "ok": false, "error": {"type": ..., "message": ..., "traceback": ...}}

Runs in the main thread, which is the only writer of the output. (An earlier run's lines are read back by
`taskpool._cli._resume`.)
"""

from __future__ import annotations

import json
import os
from typing import Any

from .._errors import JobTimeoutError, RemoteTraceback, WorkerCrashedError
from ._worker import error_record

__all__ = ["error_line", "exception_record", "ok_line", "user_frames"]


def ok_line(index: int, key: str, where: int, result_json: str) -> str:
    """The line of an input whose call returned; ``result_json`` is its result, encoded in the worker.

    ``key`` is ``"line"`` or ``"value"``, and ``where`` the input's line number or ``--range`` value.
    """
    return f'{{"index": {index}, "{key}": {where}, "ok": true, "result": {result_json}}}\n'


def error_line(index: int, key: str, where: int, error: dict[str, Any]) -> str:
    """The line of an input whose call failed, or that could not be decoded (see `ok_line`)."""
    return json.dumps({"index": index, key: where, "ok": False, "error": error}) + "\n"


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''} made"


def command_message(exc: BaseException, attempts: int) -> str:
    """The message of a job's exception, with the library's advice replaced by the command's flags."""
    text = str(exc)
    if isinstance(exc, WorkerCrashedError):
        what = text.partition(". Only this job failed")[0]
        return (
            f"{what} ({_attempts(attempts)}). Only this input failed; --retries N runs an input up to "
            "N more times, if it is safe to run again"
        )
    if isinstance(exc, JobTimeoutError):
        what = text.partition(". Give it a longer timeout")[0]
        return (
            f"{what} ({_attempts(attempts)}). Give a larger --timeout if it needs longer, "
            "or --retries N to try it again"
        )
    return text


def exception_record(exc: BaseException, attempts: int = 1) -> dict[str, Any]:
    """The error record of a job's exception, with the worker's traceback when there is one.

    ``attempts`` is how many times the job ran, which crash and timeout messages report.
    """
    cause = exc.__cause__
    record = error_record(
        exc, user_frames(cause.tb) if isinstance(cause, RemoteTraceback) else None
    )
    record["message"] = command_message(exc, attempts)
    return record


# taskpool's own code, whose frames a user's traceback leaves out; the examples are user-facing: theirs stay.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_EXAMPLES = _PACKAGE_DIR + "examples.py"


def user_frames(tb: str) -> str:
    """A worker's traceback text without the frames of taskpool's own code, which only called the user's."""
    out: list[str] = []
    skipping = False
    for line in tb.splitlines(keepends=True):
        if line.startswith('  File "'):
            path = line[len('  File "') :].partition('"')[0]
            skipping = path.startswith(_PACKAGE_DIR) and path != _EXAMPLES
        elif not line.startswith("    "):
            # the header, the exception line, or a chained traceback's text
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)
