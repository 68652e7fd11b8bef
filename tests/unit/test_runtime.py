"""The worker runtime, without processes: running an attempt, outcome round trips, lines and log records."""

from __future__ import annotations

import logging
import pickle
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests import jobs

from taskpool import RemoteTraceback, SerializationError
from taskpool._core.timers import TimerHeap
from taskpool._runtime.attempt import (
    ITEM_INDEX,
    JobKind,
    call,
    decode_error,
    decode_value,
    encode_error,
    encode_value,
    job_here,
    process_job,
    thread_job,
)
from taskpool._runtime.output import LineSplitter, prepare_record
from taskpool._runtime.serialize import OUT_OF_BAND_MIN

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_a_value_survives_the_round_trip(value: object) -> None:
    assert decode_value(encode_value(value, "job"), "job") == (True, value)


def test_a_large_bytes_value_travels_out_of_band_and_comes_back_equal() -> None:
    value = bytes(range(256)) * (OUT_OF_BAND_MIN // 256 + 1)
    payload = encode_value(value, "job")
    assert isinstance(payload, tuple)  # (pickle, buffers): the bytes are not copied into the pickle
    assert decode_value(payload, "job") == (True, value)
    assert isinstance(encode_value(value, "job", split=False), bytes)


def test_a_value_whose_unpickling_raises_system_exit_fails_only_as_a_serialization_error() -> None:
    ok, error = decode_value(pickle.dumps(jobs.ExitsOnUnpickle()), "job")
    assert not ok
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where) == ("result", "unpickle", "parent")
    assert "SystemExit" in error.reason


def test_an_exception_comes_back_as_itself_with_the_traceback_as_its_cause() -> None:
    try:
        jobs.raise_value_error(3)
    except ValueError as exc:
        payload, tb = encode_error(exc, "job")
    error = decode_error(payload, tb, "job")
    assert type(error) is ValueError
    assert error.args == ("bad value", 3)
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "raise_value_error" in str(error.__cause__)


def test_an_exception_that_does_not_pickle_is_named_by_its_stand_in() -> None:
    try:
        jobs.raise_unpicklable_error()
    except Exception as exc:
        payload, tb = encode_error(exc, "job")
    error = decode_error(payload, tb, "job")
    assert isinstance(error, SerializationError)
    assert error.part == "exception"
    assert "the job raised UnpicklableError: nope" in str(error)


def test_an_exception_that_cannot_be_rebuilt_says_what_the_job_raised() -> None:
    try:
        jobs.raise_unrebuildable()
    except Exception as exc:
        payload, tb = encode_error(exc, "job")
    error = decode_error(payload, tb, "job")
    assert isinstance(error, SerializationError)
    assert (error.stage, error.where) == ("unpickle", "parent")
    assert "the job raised" in str(error)
    assert "NeedsKeywordError" in str(error)


@pytest.mark.parametrize(
    ("kind", "args", "expected"),
    [
        (JobKind.CALL, (2, 3), 5),
        (JobKind.CHUNK, [1, 2, 3], [1, 4, 9]),
        (JobKind.STARCHUNK, [(1, 2), (3, 4)], [3, 7]),
    ],
)
def test_call_runs_each_kind(kind: JobKind, args: object, expected: object) -> None:
    fn = jobs.add if kind != JobKind.CHUNK else jobs.square
    assert call(fn, kind, args, {}) == expected


@pytest.mark.parametrize("kind", [JobKind.CHUNK, JobKind.STARCHUNK])
def test_an_item_that_raises_is_tagged_with_its_index_in_the_chunk(kind: JobKind) -> None:
    chunk: list[object] = (
        list(range(15, 20)) if kind == JobKind.CHUNK else [(i, 17) for i in range(15, 20)]
    )
    with pytest.raises(ValueError, match="bad item") as info:
        call(jobs.fail_at, kind, chunk, {})
    assert getattr(info.value, ITEM_INDEX) == 2


def test_job_here_prefers_the_threads_job_then_the_processs() -> None:
    assert job_here() == (None, None)
    process_job[0], process_job[1] = 7, "proc"
    try:
        assert job_here() == (7, "proc")
        token = thread_job.set((9, "thread"))
        assert job_here() == (9, "thread")
        thread_job.reset(token)
    finally:
        process_job[0], process_job[1] = 0, None
    assert job_here() == (None, None)


@given(st.lists(st.text(alphabet="ab\n", max_size=12), max_size=12))
def test_any_split_of_written_text_gives_the_same_whole_lines(pieces: list[str]) -> None:
    splitter = LineSplitter()
    out = "".join(splitter.feed(piece) for piece in pieces)
    text = "".join(pieces)
    assert out == text[: text.rfind("\n") + 1]  # every whole line, in order, nothing else
    assert out + splitter.rest() == text  # the unfinished last line is kept, not lost


def test_a_log_record_with_an_unpicklable_extra_keeps_its_repr() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "n=%d", (5,), None)
    record.lock = threading.Lock()
    copy = pickle.loads(prepare_record(record, 3, "job"))
    assert copy.getMessage() == "n=5"
    assert (copy.job_id, copy.job_name) == (3, "job")
    assert "lock" in copy.lock


def test_the_timer_heap_gives_due_items_in_time_order_and_keeps_the_rest() -> None:
    heap: TimerHeap[str] = TimerHeap()
    for when, item in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (2.0, "b2")]:
        heap.push(when, item)
    assert heap.next_due() == 1.0
    assert heap.wait_time(0.5) == 0.5
    assert heap.pop_due(2.0) == ["a", "b", "b2"]
    assert len(heap) == 1
    assert heap.wait_time(5.0) == 0.0
    heap.clear()
    assert heap.next_due() is None
