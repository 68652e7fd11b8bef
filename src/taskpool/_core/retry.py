"""`Retry`: when a failed job runs again, decided in the parent.

The decision is made on the pool's event thread from the outcome of the attempt, so a retry also covers
outcomes that never reach user code in the worker: a crashed worker and a timeout. The strategies are
tenacity's (``tenacity.stop_after_delay(10)``, ``tenacity.wait_exponential()``, ``tenacity.retry_if_exception(...)``,
combined with ``|`` and ``&`` and ``+``) evaluated on a `tenacity.RetryCallState` built from the job's history, so
a policy can be tested as a pure function with `Retry.decide`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tenacity

from .._errors import InitializerError, JobTimeoutError, SerializationError, WorkerCrashedError

__all__ = ["Retry"]

# A tenacity strategy is a callable over a RetryCallState; these aliases only document which one goes where.
StopStrategy = Callable[[tenacity.RetryCallState], bool]
WaitStrategy = Callable[[tenacity.RetryCallState], float]
RetryStrategy = Callable[[tenacity.RetryCallState], bool]


def _noop() -> None:  # the `fn` a RetryCallState wants; never called
    return None


@dataclass(frozen=True, slots=True)
class Retry:
    """A retry policy for jobs.

    Args:
        attempts: the most times a job runs in all, the first run included. None leaves stopping to ``stop``.
        on: exception types of the job's own that are retried (subclasses too).
        wait: seconds to wait before each retry, or a tenacity wait strategy (``tenacity.wait_exponential()``).
        on_crash: also retry when the worker running the job dies (`WorkerCrashedError`).
        on_timeout: also retry when the job runs past its timeout (`JobTimeoutError`).
        stop: a tenacity stop strategy, combined with ``attempts`` (whichever stops first).
        retry: a tenacity retry strategy; when given it decides instead of ``on``, for the job's own exceptions.

    Raises:
        ValueError: the policy could never stop, or a number is out of range. Raised when the policy is made,
            not when a job fails.
    """

    attempts: int | None = 3
    on: tuple[type[BaseException], ...] = (Exception,)
    wait: float | WaitStrategy = 0.0
    on_crash: bool = False
    on_timeout: bool = False
    stop: StopStrategy | None = None
    retry: RetryStrategy | None = None
    _wait: WaitStrategy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts is None and self.stop is None:
            raise ValueError(
                "Retry(attempts=None) without a stop strategy would retry forever; give attempts=N "
                "or stop=tenacity.stop_after_delay(seconds)"
            )
        if self.attempts is not None:
            if isinstance(self.attempts, float) and math.isinf(self.attempts):
                raise ValueError(
                    "Retry(attempts=inf) would retry forever; give a whole number >= 1"
                )
            if (
                not isinstance(self.attempts, int)
                or isinstance(self.attempts, bool)
                or self.attempts < 1
            ):
                raise ValueError(
                    f"Retry(attempts=...) must be a whole number >= 1, not {self.attempts!r}"
                )
        if isinstance(self.on, type):
            object.__setattr__(self, "on", (self.on,))
        for exc_type in self.on:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(f"Retry(on=...) takes exception classes, not {exc_type!r}")
        wait = self.wait
        if isinstance(wait, (int, float)):
            if isinstance(wait, bool) or not math.isfinite(wait) or wait < 0:
                raise ValueError(
                    f"Retry(wait=...) must be a finite number of seconds >= 0, not {wait!r}"
                )
            object.__setattr__(self, "_wait", tenacity.wait_fixed(float(wait)))
        elif callable(wait):
            object.__setattr__(self, "_wait", wait)
        else:
            raise TypeError(
                f"Retry(wait=...) takes seconds or a tenacity wait strategy, not {wait!r}"
            )

    def _retryable(self, exc: BaseException, state: tenacity.RetryCallState) -> bool:
        if isinstance(exc, WorkerCrashedError):
            return self.on_crash
        if isinstance(exc, JobTimeoutError):
            return self.on_timeout
        if isinstance(exc, (SerializationError, InitializerError)):
            return False  # the same bytes fail the same way on every attempt
        if self.retry is not None:
            return bool(self.retry(state))
        return isinstance(exc, self.on)

    def decide(
        self, attempt: int, exc: BaseException, started: float, now: float | None = None
    ) -> float | None:
        """Whether attempt number ``attempt`` (1-based), which raised ``exc``, gets another attempt.

        Runs on the pool's event thread (or in a test, anywhere: it is a pure function of its arguments and
        the policy). ``started`` is the `time.monotonic` time of the first attempt.

        Returns:
            The delay in seconds before the next attempt, or None for "do not retry".
        """
        now = time.monotonic() if now is None else now
        state = tenacity.RetryCallState(retry_object=None, fn=_noop, args=(), kwargs={})  # type: ignore[arg-type]
        state.start_time = started
        state.attempt_number = attempt
        outcome: Any = tenacity.Future(attempt)
        outcome.set_exception(exc)
        state.outcome = outcome
        state.outcome_timestamp = now
        if not self._retryable(exc, state):
            return None
        if self.attempts is not None and attempt >= self.attempts:
            return None
        if self.stop is not None and self.stop(state):
            return None
        return max(0.0, float(self._wait(state)))
