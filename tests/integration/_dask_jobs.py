"""Module-level job functions for the Dask backend tests (they must import by reference on Dask workers)."""

from __future__ import annotations

import logging
import os
import threading
import time

import taskpool

# Set by `remember` (the pools' initializer) in each worker process.
INITIALIZED: list[str] = []


class JobError(Exception):
    """A job's own exception, with arguments that must come back intact."""

    def __init__(self, code: int, why: str) -> None:
        self.code = code
        self.why = why
        super().__init__(code, why)


def double(x: int) -> int:
    return 2 * x


def add(a: int, b: int = 0) -> int:
    return a + b


def fail(code: int) -> int:
    raise JobError(code, "on purpose")


def log_and_print(x: int) -> int:
    logging.getLogger("taskpool.tests.dask").warning("job says %s", x)
    print(f"printed {x}")
    print("no newline", end="")
    return x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def nap_then_pid(x: int, seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return x, os.getpid()


def pid() -> int:
    return os.getpid()


def crash() -> None:
    os._exit(3)


def nap_then_crash(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(3)


def make_lock() -> object:
    return threading.Lock()


def remember(tag: str) -> None:
    INITIALIZED.append(tag)


def initialized() -> list[str]:
    return list(INITIALIZED)


def refuse(tag: str) -> None:
    raise RuntimeError(f"initializer refuses {tag}")


def _exit_on_load() -> None:
    raise SystemExit("this result refuses to be unpickled")


class ExitsOnLoad:
    """Pickles fine on the worker; unpickling it in the parent raises SystemExit."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_exit_on_load, ())


def return_exits_on_load() -> ExitsOnLoad:
    return ExitsOnLoad()


def log_through_get_logger(x: int) -> int:
    taskpool.get_logger("taskpool.tests.dask.tagged").warning("tagged %s", x)
    return x
