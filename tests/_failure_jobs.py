"""Job functions for the failure, retry, interrupt and soak tests.

They live at module level so that workers started with spawn or forkserver can import them. Each runs in a
worker process unless its docstring says otherwise. Attempts are counted in files (one line per attempt,
appended with O_APPEND, which is atomic for short writes), so a count survives the worker that made it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

# Seconds a job may block on a barrier or an event before it gives up; far above any expected wait.
WAIT = 30.0


def barrier_wait(barrier: Any) -> int:
    """Wait on a shared barrier; returns this worker's pid. Finishes only once ``parties`` workers wait."""
    barrier.wait(WAIT)
    return os.getpid()


def wait_then_exit(event: Any, code: int = 5) -> None:
    """Block until ``event`` is set, then end the worker process at once."""
    event.wait(WAIT)
    os._exit(code)


def wait_then_return(event: Any, value: Any) -> Any:
    """Block until ``event`` is set, then return ``value``."""
    event.wait(WAIT)
    return value


def started_then_sleep(event: Any, seconds: float) -> float:
    """Set ``event`` (the job is running), then sleep ``seconds``."""
    event.set()
    time.sleep(seconds)
    return seconds


def record(path: str, value: Any) -> Any:
    """Append ``value`` to the file at ``path`` (one line per run) and return it."""
    _append(path, str(value))
    return value


def _append(path: str, line: str) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)
    with open(path) as f:
        return sum(1 for _ in f)


def attempt_number(path: str) -> int:
    """Record one attempt in the file at ``path``; return how many attempts the file holds now (from 1)."""
    return _append(path, str(os.getpid()))


def fail_then_succeed(path: str, failures: int, value: Any) -> Any:
    """Raise ConnectionError on the first ``failures`` attempts, then return ``value``."""
    n = attempt_number(path)
    if n <= failures:
        raise ConnectionError(f"attempt {n} failed on purpose")
    return value


def crash_then_succeed(path: str, crashes: int, value: Any) -> Any:
    """End the worker with os._exit on the first ``crashes`` attempts, then return ``value``."""
    if attempt_number(path) <= crashes:
        os._exit(9)
    return value


def hang_then_succeed(path: str, hangs: int, value: Any) -> Any:
    """Sleep far past any test's timeout on the first ``hangs`` attempts, then return ``value``."""
    if attempt_number(path) <= hangs:
        time.sleep(WAIT)
    return value


def raise_key_error_counted(path: str) -> None:
    """Record the attempt, then raise KeyError (an exception a ConnectionError policy does not retry)."""
    attempt_number(path)
    raise KeyError("not retryable")


def initializer_raises() -> None:
    """An initializer that fails in every worker."""
    raise RuntimeError("the database is unreachable")


def initializer_exits() -> None:
    """An initializer that ends its worker process without a word."""
    os._exit(17)


def soak_job(kind: str, x: int) -> int:
    """One soak-test job: ``ok`` returns ``x * 2``; ``raise`` raises; ``crash`` exits; ``hang`` sleeps."""
    if kind == "raise":
        raise ValueError(x)
    if kind == "crash":
        os._exit(1)
    if kind == "hang":
        time.sleep(WAIT)
    return x * 2


def ignore_sigint_check(_: Any = None) -> bool:
    """Whether this worker ignores SIGINT (the parent decides what Ctrl-C means)."""
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _refuse_to_load() -> Any:
    raise RuntimeError("this function refuses to be unpickled")


class UnpicklableCallable:
    """A job function that cannot be pickled in the parent."""

    def __call__(self) -> int:
        return 1

    def __reduce__(self) -> Any:
        raise TypeError("this function refuses to be pickled")


class CallableFailsToUnpickle:
    """A job function that pickles in the parent but fails to unpickle in the worker."""

    def __call__(self) -> int:
        return 1

    def __reduce__(self) -> Any:
        return (_refuse_to_load, ())


def segfault_quietly() -> None:
    """Crash the worker with SIGSEGV, without the fault handler a forked worker inherits from pytest.

    The crash is the point; the handler would only print a traceback dump into the test output.
    """
    import ctypes
    import faulthandler

    faulthandler.disable()
    ctypes.string_at(0)


def record_then_exit(path: str, value: Any, code: int = 3) -> None:
    """Append ``value`` to the file at ``path`` (this run counts), then end the worker at once."""
    _append(path, str(value))
    os._exit(code)


def record_or_exit(path: str, value: int, every: int) -> int:
    """Append ``value`` to the file at ``path`` and return it; every ``every``-th value ends the worker after."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"%d\n" % value)
    finally:
        os.close(fd)
    if value % every == every - 1:
        os._exit(3)
    return value
