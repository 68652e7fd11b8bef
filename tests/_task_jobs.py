"""Job functions for the `@task`, logging, events and progress tests: at module level, so that workers started
with spawn or forkserver import them. Each runs in a worker (process or thread) unless its docstring says
otherwise.
"""

from __future__ import annotations

import os
import time
import zlib
from typing import Any

from taskpool import Retry, get_logger, task

log = get_logger(__name__)

LOGGER_NAME = __name__


@task
def double(x: int) -> int:
    return 2 * x


@task(timeout=10.0, retry=Retry(attempts=3, on=(ValueError,)), name="flaky-add")
def flaky_add(x: int, y: int = 0) -> int:
    return x + y


@task(name="pid")
def task_pid(_: Any = None) -> int:
    return os.getpid()


@task
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(retry=Retry(attempts=3))
def fail_until(marker: str, succeed_on: int) -> int:
    """Fails until it has been called ``succeed_on`` times (counted in a file, so across processes)."""
    with open(marker, "a") as f:
        f.write("x")
    with open(marker) as f:
        calls = len(f.read())
    if calls < succeed_on:
        raise ValueError(f"attempt {calls}")
    return calls


class Holder:
    """A class whose method is a task: pickled by its dotted qualified name."""

    @staticmethod
    @task
    def triple(x: int) -> int:
        return 3 * x


def checked_line(tag: str, i: int, size: int) -> str:
    """One line of test output that carries its own checksum: ``tag i payload crc``."""
    payload = (f"{tag}{i}-" * (size // (len(tag) + 3) + 1))[:size]
    body = f"{tag} {i} {payload}"
    return f"{body} {zlib.crc32(body.encode()):08x}"


def verify_line(line: str) -> tuple[str, int] | None:
    """(tag, index) of a whole line made by `checked_line`, or None if it is torn or corrupt."""
    body, _, crc = line.rstrip("\n").rpartition(" ")
    parts = body.split(" ")
    if len(parts) != 3 or f"{zlib.crc32(body.encode()):08x}" != crc:
        return None
    return parts[0], int(parts[1])


def log_lines(tag: str, count: int, size: int) -> int:
    """Log ``count`` checked lines at WARNING (which passes the default levels)."""
    for i in range(count):
        log.warning("%s", checked_line(tag, i, size))
    return count


def print_checked(tag: str, count: int, size: int) -> int:
    """Print ``count`` checked lines, each in several writes, so a torn line would show."""
    for i in range(count):
        line = checked_line(tag, i, size)
        half = len(line) // 2
        print(line[:half], end="")
        print(line[half:])
    return count


def log_forever(tag: str) -> None:
    """Log checked lines until the process is killed (runs in a worker the test kills)."""
    i = 0
    while True:
        log.warning("%s", checked_line(tag, i, 200))
        i += 1


def print_forever(tag: str) -> None:
    """Print checked lines until the process is killed."""
    i = 0
    while True:
        print(checked_line(tag, i, 200))
        i += 1


def log_with_exception() -> None:
    try:
        raise KeyError("inside")
    except KeyError:
        log.exception("caught %s", "it")


def outcome(kind: str, value: int) -> int:
    """A job whose outcome is chosen by the test: ``value`` back, an exception, or a crash."""
    if kind == "value":
        return value
    if kind == "error":
        raise ValueError(value)
    if kind == "crash":
        os._exit(7)
    raise AssertionError(f"unknown outcome {kind!r}")


def retry_then(marker: str, fails: int, value: int) -> int:
    """Raise ValueError the first ``fails`` times it is called for ``marker`` (a file), then return ``value``."""
    with open(marker, "a") as f:
        f.write("x")
    with open(marker) as f:
        calls = len(f.read())
    if calls <= fails:
        raise ValueError(f"attempt {calls}")
    return value


def getpid_after_log(message: str) -> int:
    """Log ``message`` and return this process's id."""
    log.warning("%s", message)
    return os.getpid()
