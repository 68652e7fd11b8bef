"""The lines ``taskpool run`` writes: one JSON record per input, ok with its result or failed with an error.

Runs in the main thread, which is the only writer of the output. (An earlier run's lines are read back by
`taskpool._cli._resume`.)
"""

from __future__ import annotations

import json
import os
from typing import Any

from .._errors import RemoteTraceback
from ._worker import error_record

__all__ = ["error_line", "exception_record", "ok_line", "user_frames"]


def ok_line(index: int, result_json: str) -> str:
    """The line of an input whose call returned; ``result_json`` is its result, encoded in the worker."""
    return f'{{"index": {index}, "ok": true, "result": {result_json}}}\n'


def error_line(index: int, error: dict[str, Any]) -> str:
    """The line of an input whose call failed, or that could not be decoded."""
    return json.dumps({"index": index, "ok": False, "error": error}) + "\n"


def exception_record(exc: BaseException) -> dict[str, Any]:
    """The error record of a job's exception, with the worker's traceback when there is one."""
    cause = exc.__cause__
    return error_record(exc, user_frames(cause.tb) if isinstance(cause, RemoteTraceback) else None)


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
