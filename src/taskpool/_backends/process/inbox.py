"""What caller threads hand the process backend's scheduler thread: requests, and the pipe that wakes it.

The scheduler's inbox is a deque of `Job`s and the requests below, in the order they were made (a stop
that follows a submit finds the job). Caller threads append to it and call `Wakeup.wake`; the scheduler
thread pops from it and calls `Wakeup.drain`. Append and popleft on a deque are atomic, and the ``pending``
flag of `Wakeup` is only a hint that saves writes, so no lock is needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..._core.job import Job

__all__ = ["QuitRequest", "StopRequest", "Wakeup", "WithdrawRequest"]


@dataclasses.dataclass(frozen=True, slots=True)
class StopRequest:
    """Stop ``job`` (a caller's `ProcessBackend.stop`)."""

    job: Job


@dataclasses.dataclass(frozen=True, slots=True)
class WithdrawRequest:
    """Drop the cancelled jobs still queued, and skip those up to id ``upto`` that workers hold and have not
    begun (a caller's `ProcessBackend.withdraw`)."""

    upto: int


@dataclasses.dataclass(frozen=True, slots=True)
class QuitRequest:
    """End the workers and the scheduler thread: after their jobs (``wait``) or now."""

    wait: bool


class Wakeup:
    """The wake pipe: a caller thread writes one byte so that the scheduler's ``select`` returns.

    ``pending`` says a wake-up is on its way, so that a burst of submits costs one write; the scheduler drains
    the pipe before it clears the flag, so a job appended while the flag was set is seen in the same round.
    """

    __slots__ = ("pending", "r", "w")

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        self.pending = False

    def wake(self) -> None:
        """Wake the scheduler (any thread)."""
        if not self.pending:
            self.pending = True
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.w, b"\0")

    def drain(self) -> None:
        """Empty the pipe, then clear the flag (scheduler thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.r, 4096):
                pass
        self.pending = False

    def close(self) -> None:
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)
