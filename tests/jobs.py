"""Job functions for the tests: at module level, so that workers started with spawn or forkserver import them.

Each runs in a worker (process or thread) unless its docstring says otherwise.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any


def square(x: int) -> int:
    return x * x


def add(x: int, y: int) -> int:
    return x + y


def identity(x: Any) -> Any:
    return x


def echo_kwargs(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def noop() -> None:
    return None


def raise_value_error(x: Any) -> None:
    raise ValueError("bad value", x)


def raise_if_negative(x: int) -> int:
    if x < 0:
        raise ValueError(x)
    return x


def getpid(_: Any = None) -> int:
    return os.getpid()


def exit_worker(code: int = 3) -> None:
    os._exit(code)


def kill_self(sig: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def segfault() -> None:
    import ctypes

    ctypes.string_at(0)


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def wait_for_event(event: Any, timeout: float = 30.0) -> bool:
    """Block until ``event`` (a multiprocessing/Manager Event) is set; returns whether it was."""
    return bool(event.wait(timeout))


class Unpicklable:
    """Fails to pickle (in the parent or a worker)."""

    def __reduce__(self) -> Any:
        raise TypeError("this object refuses to be pickled")


def _boom_on_load() -> Any:
    raise RuntimeError("this object refuses to be unpickled")


class FailsToUnpickle:
    """Pickles fine, fails when unpickled."""

    def __reduce__(self) -> Any:
        return (_boom_on_load, ())


def return_unpicklable() -> Unpicklable:
    return Unpicklable()


def return_fails_to_unpickle() -> FailsToUnpickle:
    return FailsToUnpickle()


class NeedsKeywordError(Exception):
    """An exception that pickles but cannot be rebuilt from its args (CPython gh-79492)."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


def raise_unrebuildable() -> None:
    raise NeedsKeywordError("cannot rebuild me", code=7)


class UnpicklableError(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("this exception refuses to be pickled")


def raise_unpicklable_error() -> None:
    raise UnpicklableError("nope")


def print_lines(tag: str, n: int) -> int:
    for i in range(n):
        print(f"{tag}:{i}")
    return n


def set_env(name: str, value: str) -> None:
    os.environ[name] = value


def get_env(name: str) -> str | None:
    return os.environ.get(name)


class JobError(Exception):
    """A job's own exception with more than one argument, to check that args survive the trip."""


def outcome(value: int, fail: int) -> int:
    """Return ``value * 2``, or raise the exception ``fail`` selects (0 = no failure)."""
    if fail == 1:
        raise ValueError(value)
    if fail == 2:
        raise KeyError(value, "key")
    if fail == 3:
        raise JobError("job failed", value)
    return value * 2


def _exit_on_load() -> Any:
    raise SystemExit("unpickling this object asks the process to exit")


class ExitsOnUnpickle:
    """Pickles fine; unpickling it raises SystemExit (in the parent, when it is a result)."""

    def __reduce__(self) -> Any:
        return (_exit_on_load, ())


def return_exits_on_unpickle() -> ExitsOnUnpickle:
    return ExitsOnUnpickle()


def log_with_unpicklable_extra(x: int) -> int:
    import logging
    import threading

    logging.getLogger("tests.extra").warning("with a lock %d", x, extra={"lock": threading.Lock()})
    return x


def return_open_file(path: str) -> Any:
    return open(path)  # the open file is the point: it must not travel


def make_process_pool() -> str:
    """Try to start a process pool inside a job; return what was raised, and how many threads this left."""
    import threading

    from taskpool import TaskPool

    before = threading.active_count()
    try:
        TaskPool(1)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc} | threads +{threading.active_count() - before}"
    return "no error"


def use_thread_pool_inside(n: int) -> list[int]:
    from taskpool import TaskPool

    with TaskPool(2, backend="thread") as inner:
        return inner.map(square, range(n))


def fail_at(x: int, bad: int = 17) -> int:
    if x == bad:
        raise ValueError("bad item", x)
    return x


def crash_at(x: int, bad: int = 17) -> int:
    if x == bad:
        os._exit(7)
    return x


def print_and_log(x: int) -> int:
    """Prints ``job-print-X`` and logs the warning ``job-log-X``, then returns ``x``."""
    import logging

    print(f"job-print-{x}")
    logging.getLogger("tests.chatty").warning("job-log-%d", x)
    return x


def spawn_and_submit_inside() -> str:
    """Try spawn() and a default-pool task submit inside a job; return what each raised and the thread delta."""
    import threading

    from taskpool import spawn
    from tests._task_jobs import double

    before = threading.active_count()
    seen: list[str] = []
    attempts: list[Callable[[], object]] = [lambda: spawn(square, 2), lambda: double.submit(2)]
    for attempt in attempts:
        try:
            attempt()
            seen.append("no error")
        except Exception as exc:
            seen.append(type(exc).__name__)
    return f"{seen} threads +{threading.active_count() - before}"


def log_many(count: int, size: int) -> int:
    """Log ``count`` warnings of about ``size`` characters each, as fast as the worker can (a chatty job)."""
    import logging

    logger = logging.getLogger("tests.chatty.many")
    text = "x" * size
    for i in range(count):
        logger.warning("%d %s", i, text)
    return count
