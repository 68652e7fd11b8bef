"""A module for the tests of ``TaskPool(preload=...)``: importing it appends this process's pid to a file.

The file is named by the environment variable ``TASKPOOL_TEST_PRELOAD_LOG`` (nothing is written without it),
so a test can count the processes that imported it: under the default start method, the template alone.
"""

from __future__ import annotations

import os

_log = os.environ.get("TASKPOOL_TEST_PRELOAD_LOG")
if _log:
    with open(_log, "a") as f:
        f.write(f"{os.getpid()}\n")
