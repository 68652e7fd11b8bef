"""What the jobs of ``taskpool run`` execute in the workers, called in-process.

That it imports light is checked with the other import checks, in test_public_api.py.
"""

from __future__ import annotations

import math
import pickle

import pytest

from taskpool._cli._worker import (
    Call,
    ResultNotJSONError,
    call_chunk,
    call_one,
    encode,
    error_record,
)


def _fail_on_two(x: int) -> int:
    if x == 2:
        raise ValueError(f"two: {x}")
    return x


class _Flaky:
    """Raises the first ``failures`` times it is called, then returns its argument."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, x: int) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"attempt {self.calls}")
        return x


def test_encode_refuses_what_json_cannot_hold() -> None:
    assert encode({"a": [1, 2.5, None, True]}) == '{"a": [1, 2.5, null, true]}'
    for value, type_name in (({1}, "set"), (math.nan, "float"), (object(), "object")):
        with pytest.raises(ResultNotJSONError, match=f"of type {type_name}"):
            encode(value)


def test_result_not_json_error_pickles() -> None:
    error = ResultNotJSONError("set", "not serializable")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.type_name, again.reason, str(again)) == (
        ResultNotJSONError,
        "set",
        "not serializable",
        str(error),
    )


def test_call_one_returns_json_and_lets_exceptions_propagate() -> None:
    assert call_one(pow, (2,), {"exp": 3}) == "8"
    with pytest.raises(ValueError, match="two"):
        call_one(_fail_on_two, (2,), {})


def test_call_chunk_isolates_each_call() -> None:
    calls: list[Call] = [((x,), {}) for x in range(4)]
    out = call_chunk(_fail_on_two, calls, attempts=1)
    assert [ok for ok, _ in out] == [True, True, False, True]
    assert [payload for ok, payload in out if ok] == ["0", "1", "3"]
    error = out[2][1]
    assert (error["type"], error["message"]) == ("ValueError", "two: 2")
    # The traceback starts at the user's function: the wrapper's and the runtime's frames are left out.
    assert error["traceback"].startswith('Traceback (most recent call last):\n  File "')
    assert "in _fail_on_two" in error["traceback"]
    assert "call_chunk" not in error["traceback"]
    assert "attempt.py" not in error["traceback"]


def test_call_chunk_retries_an_exception_but_not_a_result_json_cannot_encode() -> None:
    flaky = _Flaky(failures=2)
    assert call_chunk(flaky, [((5,), {})], attempts=3) == [(True, "5")]
    assert flaky.calls == 3
    flaky = _Flaky(failures=2)
    assert call_chunk(flaky, [((5,), {})], attempts=2)[0][1]["type"] == "ConnectionError"
    calls: list[int] = []

    def a_set(x: int) -> set[int]:
        calls.append(x)
        return {x}

    [(ok, error)] = call_chunk(a_set, [((1,), {})], attempts=3)
    assert (ok, error["type"], error["traceback"], calls) == (
        False,
        "ResultNotJSONError",
        None,
        [1],
    )


def test_error_record_names_the_exception() -> None:
    assert error_record(KeyError("k"), "tb") == {
        "type": "KeyError",
        "message": "'k'",
        "traceback": "tb",
    }
