"""``taskpool run --resume`` as pure logic: the set of finished inputs, and an earlier run's records read back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskpool._cli._resume import parse_record, read_previous
from taskpool._cli._status import SHOWN_FAILURES, UsageError
from taskpool._core.indexset import IndexSet

if TYPE_CHECKING:
    from pathlib import Path


def test_index_set_stays_compact_for_consecutive_indices() -> None:
    done = IndexSet()
    for i in [2, 0, 1, 5, 3]:
        done.add(i)
    assert done.floor == 4
    assert done.above == {5}
    assert [i in done for i in range(7)] == [True, True, True, True, False, True, False]
    assert len(done) == 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), max_size=80))
def test_index_set_behaves_as_a_set_whatever_the_order(indices: list[int]) -> None:
    done, oracle = IndexSet(), set()
    for i in indices:
        done.add(i)
        oracle.add(i)
        assert len(done) == len(oracle)
    assert [i in done for i in range(64)] == [i in oracle for i in range(64)]
    assert done.floor not in done  # the floor is the first index missing...
    assert all(i in done for i in range(done.floor))  # ... and every one below it is there
    assert all(i > done.floor for i in done.above)  # so only the indices past a gap are kept apart


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"index": 0, "ok": true, "result": 1}\n', (0, True, {})),
        (b'{"index": 7, "ok": false, "error": {"type": "E"}}\n', (7, False, {"type": "E"})),
        (b'{"index": 7, "ok": false, "error": "text"}\n', (7, False, {})),
        (b'{"index": 1, "ok": tr', None),  # torn
        (b"not json\n", None),
        (b"[1, 2]\n", None),
        (b'{"ok": true}\n', None),
        (b'{"index": -1, "ok": true}\n', None),
        (b'{"index": true, "ok": true}\n', None),
        (b'{"index": 1.0, "ok": true}\n', None),
        (b'{"index": 1, "ok": 1}\n', None),
        (b'{"index": 1}\n', None),
    ],
)
def test_parse_record_accepts_only_result_records(
    line: bytes, expected: tuple[int, bool, dict[str, object]] | None
) -> None:
    assert parse_record(line) == expected


def test_read_previous_truncates_only_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    good = (
        '{"index": 0, "ok": true, "result": 0}\n{"index": 2, "ok": false, "error": {"type": "E"}}\n'
    )
    out.write_text(good + '{"index": 1, "ok": tr', encoding="utf-8")
    previous = read_previous(str(out))
    assert previous.torn
    assert out.read_text(encoding="utf-8") == good
    assert (previous.ok, previous.failed, len(previous.done)) == (1, 1, 2)
    assert previous.failures == [(2, {"type": "E"})]
    assert 1 not in previous.done
    again = read_previous(str(out))  # a whole file is left alone
    assert not again.torn
    assert out.read_text(encoding="utf-8") == good
    assert not read_previous(str(tmp_path / "absent.jsonl")).done  # nothing yet: start afresh


def test_read_previous_drops_a_last_line_without_its_newline(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    good = '{"index": 0, "ok": true, "result": 0}\n'
    out.write_text(
        good + '{"index": 1, "ok": true, "result": 1}', encoding="utf-8"
    )  # whole, yet unended
    previous = read_previous(str(out))
    assert previous.torn
    assert 1 not in previous.done
    assert out.read_text(encoding="utf-8") == good


def test_read_previous_refuses_a_bad_line_before_the_last(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    text = '{"index": 0, "ok": true, "result": 0}\nnot a record\n{"index": 1, "ok": true, "result": 1}\n'
    out.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=r"line 2 of .* is not a result record"):
        read_previous(str(out))
    assert out.read_text(encoding="utf-8") == text  # left as it was


def test_read_previous_keeps_the_first_failures_and_counts_all(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    lines = [f'{{"index": {i}, "ok": false, "error": {{"type": "E{i}"}}}}\n' for i in range(9)]
    out.write_text("".join(lines), encoding="utf-8")
    previous = read_previous(str(out))
    assert (previous.ok, previous.failed, previous.torn) == (0, 9, False)
    assert previous.failures == [(i, {"type": f"E{i}"}) for i in range(SHOWN_FAILURES)]
    assert (previous.done.floor, previous.done.above) == (9, set())


def test_read_previous_of_an_unreadable_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read .* to resume"):
        read_previous(str(tmp_path))  # a directory


def test_count_below_counts_only_the_indices_of_a_range() -> None:
    done = IndexSet()
    for i in [*range(10), 15, 20]:
        done.add(i)
    assert [done.count_below(n) for n in (0, 3, 10, 16, 100)] == [0, 3, 10, 11, 12]
