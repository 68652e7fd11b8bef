"""`Retry` as a pure function: `Retry.decide` on hand-made histories, tenacity strategies, bad policies."""

from __future__ import annotations

from typing import Any

import pytest
import tenacity

from taskpool import (
    InitializerError,
    JobTimeoutError,
    Retry,
    SerializationError,
    WorkerCrashedError,
)

T0 = 1000.0  # a made-up monotonic time of the first attempt


def decide(policy: Retry, attempt: int, exc: BaseException, elapsed: float = 0.0) -> float | None:
    return policy.decide(attempt, exc, T0, now=T0 + elapsed)


def test_attempts_bound_the_number_of_runs() -> None:
    policy = Retry(attempts=3, on=(ConnectionError,))
    assert decide(policy, 1, ConnectionError()) == 0.0
    assert decide(policy, 2, ConnectionError()) == 0.0
    assert decide(policy, 3, ConnectionError()) is None


def test_only_listed_exceptions_and_subclasses_are_retried() -> None:
    policy = Retry(attempts=5, on=(OSError,))
    assert decide(policy, 1, ConnectionResetError()) is not None  # a subclass
    assert decide(policy, 1, KeyError("x")) is None
    one_class = Retry(on=ValueError)  # type: ignore[arg-type]  # accepted at run time, as a convenience
    assert decide(one_class, 1, ValueError()) is not None


def test_crashes_and_timeouts_need_their_flags() -> None:
    crash, timeout = WorkerCrashedError(1, -9), JobTimeoutError(1.0)
    everything = Retry(attempts=3, on=(Exception,))
    assert decide(everything, 1, crash) is None
    assert decide(everything, 1, timeout) is None
    assert decide(Retry(attempts=3, on_crash=True), 1, crash) == 0.0
    assert decide(Retry(attempts=3, on_timeout=True), 1, timeout) == 0.0
    assert decide(Retry(attempts=3, on_crash=True), 3, crash) is None


def test_serialization_and_initializer_errors_are_never_retried() -> None:
    policy = Retry(attempts=5, on=(Exception,), retry=tenacity.retry_always)
    assert decide(policy, 1, SerializationError("result", "pickle", "worker")) is None
    assert decide(policy, 1, InitializerError("x")) is None


def test_fixed_wait() -> None:
    assert decide(Retry(attempts=3, wait=0.25), 1, Exception()) == 0.25


def test_tenacity_wait_strategies_see_the_attempt_number() -> None:
    policy = Retry(attempts=10, wait=tenacity.wait_exponential(multiplier=1, max=5))
    assert [decide(policy, n, Exception()) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    combined = Retry(
        attempts=10, wait=tenacity.wait_fixed(1) + tenacity.wait_incrementing(start=0, increment=2)
    )
    assert [decide(combined, n, Exception()) for n in range(1, 4)] == [1, 3, 5]
    jitter = Retry(attempts=10, wait=tenacity.wait_random(0, 0.5))
    delay = decide(jitter, 1, Exception())
    assert delay is not None
    assert 0 <= delay <= 0.5


def test_tenacity_stop_strategies_combine_with_attempts() -> None:
    by_time = Retry(attempts=None, stop=tenacity.stop_after_delay(10))
    assert decide(by_time, 50, Exception(), elapsed=9.0) is not None
    assert decide(by_time, 2, Exception(), elapsed=10.0) is None
    either = Retry(attempts=5, stop=tenacity.stop_after_delay(10))
    assert decide(either, 5, Exception(), elapsed=1.0) is None  # attempts first
    assert decide(either, 2, Exception(), elapsed=11.0) is None  # time first
    assert decide(either, 2, Exception(), elapsed=1.0) is not None
    ored = Retry(attempts=None, stop=tenacity.stop_after_attempt(3) | tenacity.stop_after_delay(5))
    assert decide(ored, 3, Exception()) is None
    assert decide(ored, 1, Exception(), elapsed=6.0) is None
    assert decide(ored, 2, Exception(), elapsed=1.0) is not None
    anded = Retry(attempts=None, stop=tenacity.stop_after_attempt(2) & tenacity.stop_after_delay(5))
    assert decide(anded, 3, Exception(), elapsed=1.0) is not None  # both must hold
    assert decide(anded, 3, Exception(), elapsed=6.0) is None


def test_tenacity_retry_strategy_decides_instead_of_on() -> None:
    policy = Retry(
        attempts=3,
        on=(KeyError,),
        retry=tenacity.retry_if_exception(
            lambda e: isinstance(e, ValueError) and "again" in str(e)
        ),
    )
    assert decide(policy, 1, ValueError("try again")) is not None
    assert decide(policy, 1, ValueError("give up")) is None
    assert decide(policy, 1, KeyError("k")) is None
    message = Retry(attempts=3, retry=tenacity.retry_if_exception_message(match="busy.*"))
    assert decide(message, 1, RuntimeError("busy now")) is not None
    assert decide(message, 1, RuntimeError("broken")) is None


def test_decide_uses_the_clock_when_now_is_not_given() -> None:
    import time

    policy = Retry(attempts=None, stop=tenacity.stop_after_delay(60))
    assert policy.decide(1, Exception(), time.monotonic()) is not None
    assert policy.decide(1, Exception(), time.monotonic() - 120) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"attempts": None}, ValueError, "forever"),
        ({"attempts": float("inf")}, ValueError, "forever"),
        ({"attempts": 0}, ValueError, ">= 1"),
        ({"attempts": 2.5}, ValueError, "whole number"),
        ({"attempts": True}, ValueError, "whole number"),
        ({"wait": -1}, ValueError, "finite number of seconds"),
        ({"wait": float("nan")}, ValueError, "finite number of seconds"),
        ({"wait": "soon"}, TypeError, "tenacity wait strategy"),
        ({"on": (ValueError, "x")}, TypeError, "exception classes"),
    ],
)
def test_bad_policies_are_refused_when_made(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Retry(**kwargs)


def test_policies_are_values() -> None:
    assert Retry(attempts=2, on=ValueError) == Retry(attempts=2, on=(ValueError,))  # type: ignore[arg-type]
    assert hash(Retry(attempts=2)) == hash(Retry(attempts=2))
    with pytest.raises(AttributeError):
        Retry().attempts = 5  # type: ignore[misc]
