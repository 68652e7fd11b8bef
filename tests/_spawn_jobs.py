"""Job functions for the `taskpool.spawn` tests.

They live at module level so that a child started with spawn or forkserver can import them. Each runs in the
spawned child process unless its docstring says otherwise.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Seconds any blocking call in these tests may take; generous so that a slow CI machine does not flake.
TIMEOUT = 30.0

log = logging.getLogger("tests.spawn")


class CustomError(Exception):
    """A job's own exception, with more than one argument."""


def add(x: int, y: int) -> int:
    return x + y


def getpid() -> int:
    return os.getpid()


def options_as_keywords(
    *, timeout: Any, start_method: Any, name: Any, retry: Any, on: Any
) -> dict[str, Any]:
    """Takes keywords named like spawn's options: they must reach the function, not the spawner."""
    return {
        "timeout": timeout,
        "start_method": start_method,
        "name": name,
        "retry": retry,
        "on": on,
    }


def raise_custom(code: int) -> None:
    raise CustomError("custom failure", code)


def exit_with(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_for(seconds: float) -> float:
    """Sleeps; the tests that use it kill the process long before it would return."""
    time.sleep(seconds)
    return seconds


def squares_in_threads(n: int) -> list[tuple[int, int]]:
    """Computes squares in ``n`` threads of the child, each of which also prints and logs a line."""
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        print(f"thread {i} ran")
        log.warning("thread %d logged", i)
        with lock:
            results.append((i, i * i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return sorted(results)


def print_and_log(tag: str) -> int:
    print(f"{tag} on stdout")
    print(f"{tag} on stderr", file=sys.stderr)
    log.warning("%s logged", tag)
    return os.getpid()


def crash_once(marker: str) -> int:
    """Dies the first time (leaving ``marker`` behind), returns its pid the second time."""
    path = Path(marker)
    if not path.exists():
        path.write_text("crashed once")
        os._exit(5)
    return os.getpid()


def record_then_die_after_returning(path: str, value: Any) -> Any:
    """Append a line to the file at ``path`` and return ``value``; a thread ends the process with
    ``os._exit(3)`` as soon as the worker counts the job as over, before or after its result is sent."""
    from taskpool._runtime.attempt import process_job  # the worker's record of the job it runs

    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    job_id = process_job[0]

    def die_when_over() -> None:
        # Nothing in the worker signals the end of a job, so this watches for it; it holds the GIL for a
        # switch interval at most between two looks.
        while process_job[0] == job_id:
            pass
        os._exit(3)

    threading.Thread(target=die_when_over, daemon=True).start()
    return value
