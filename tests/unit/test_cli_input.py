"""The input of ``taskpool run``: JSON Lines decoded lazily, and the reader thread that bounds memory."""

from __future__ import annotations

import io
import itertools
import queue
from typing import TYPE_CHECKING, Any

import pytest

from taskpool._cli._input import Budget, Item, Reader, json_lines, range_items
from taskpool._core.indexset import IndexSet

if TYPE_CHECKING:
    from collections.abc import Iterator


def test_json_lines_map_values_to_calls_and_skip_blank_lines() -> None:
    stream = io.BytesIO(b'[1, 2]\n{"x": 1}\n\n3\n"s"\n  \nnull\n[[1]]')
    assert [item[0] for item in json_lines(stream)] == [
        ((1, 2), {}),
        ((), {"x": 1}),
        ((3,), {}),
        (("s",), {}),
        ((None,), {}),
        (([1],), {}),
    ]


def test_a_line_that_is_not_json_becomes_an_error_record() -> None:
    items = list(json_lines(io.BytesIO(b"1\n{oops\n\xff\n2\n")))
    assert [item[0] for item in (items[0], items[3])] == [((1,), {}), ((2,), {})]
    for item, lineno in ((items[1], 2), (items[2], 3)):
        error = item[0]
        assert isinstance(error, dict)
        assert error["type"] == "InputError"
        assert error["message"].startswith(f"line {lineno} of the input is not JSON: ")
        assert error["traceback"] is None


def test_range_items_call_with_each_integer() -> None:
    assert [item[0] for item in range_items(-1, 2)] == [((-1,), {}), ((0,), {}), ((1,), {})]
    assert list(range_items(3, 3)) == []


def test_the_reader_holds_at_most_a_window_of_chunks() -> None:
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    consumed: list[int] = []

    def endless() -> Iterator[Item]:
        for n in itertools.count():
            consumed.append(n)
            yield Item(((n,), {}), n, 0)

    reader = Reader(endless(), IndexSet(), chunksize=3, budget=Budget(2, 2**20), events=events)
    reader.start()
    try:
        chunks = [events.get(timeout=10)[1] for _ in range(2)]
        assert [c.indices for c in chunks] == [[0, 1, 2], [3, 4, 5]]
        with pytest.raises(queue.Empty):  # no credit left: it reads nothing more
            events.get(timeout=0.2)
        assert len(consumed) == 6
        reader.budget.give_back(0)  # one chunk written: one more may be read
        assert events.get(timeout=10)[1].indices == [6, 7, 8]
    finally:
        reader.stop()


def test_the_reader_skips_finished_inputs_and_ends() -> None:
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    done = IndexSet()
    for i in (0, 1, 2, 4):
        done.add(i)
    reader = Reader(range_items(0, 7), done, chunksize=2, budget=Budget(8, 2**20), events=events)
    reader.start()
    try:
        got = [events.get(timeout=10) for _ in range(3)]
        # the first chunk of two would be empty: its credit is given back and it is not sent
        assert [(kind, c.indices) for kind, c in got[:2]] == [("chunk", [3, 5]), ("chunk", [6])]
        assert got[2] == ("end", None)
    finally:
        reader.stop()


def test_an_unreadable_input_becomes_an_event() -> None:
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def failing() -> Iterator[Item]:
        yield Item(((0,), {}), 0, 0)
        raise OSError("disk gone")

    reader = Reader(failing(), IndexSet(), chunksize=5, budget=Budget(2, 2**20), events=events)
    reader.start()
    try:
        kind, exc = events.get(timeout=10)
        assert kind == "input-failed"
        assert isinstance(exc, OSError)
    finally:
        reader.stop()


def test_the_reader_holds_at_most_a_budget_of_bytes() -> None:
    events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    lines = (Item(((n,), {}), n + 1, 1000) for n in itertools.count())
    reader = Reader(lines, IndexSet(), chunksize=1, budget=Budget(100, 2500), events=events)
    reader.start()
    try:
        chunks = [events.get(timeout=10)[1] for _ in range(3)]  # 3000 bytes: the budget is spent
        assert [c.where for c in chunks] == [[1], [2], [3]]
        with pytest.raises(queue.Empty):
            events.get(timeout=0.2)
        reader.budget.give_back(chunks[0].nbytes)  # 2000 bytes left out: one more may be read
        assert events.get(timeout=10)[1].where == [4]
    finally:
        reader.stop()


def test_a_line_nested_too_deeply_or_with_nan_becomes_an_error_record() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    items = list(json_lines(io.BytesIO(b"1\n" + deep + b"NaN\n[Infinity]\n\n2\n")))
    assert [item.where for item in items] == [1, 2, 3, 4, 6]
    assert items[1].call == {
        "type": "InputError",
        "message": "line 2 of the input is nested too deeply to decode",
        "traceback": None,
    }
    for item, name in ((items[2], "NaN"), (items[3], "Infinity")):
        assert isinstance(item.call, dict)
        assert f"{name} is not a JSON value" in item.call["message"]
    assert items[4].call == ((2,), {})
