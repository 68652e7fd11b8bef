"""The process backend's outcome ring: entries in, entries out, and what a death mid-write leaves readable."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from taskpool._backends.process.protocol import OP_RESULT
from taskpool._backends.process.ring import MAX_ENTRY, RING_SIZE, OutcomeRing, read_outcomes

_COMMIT = struct.Struct("=q")
_outcomes = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2**62),
        st.booleans(),
        st.binary(max_size=200),
        st.none() | st.text(max_size=100),
        st.floats(min_value=0.0, max_value=1e3),
    ),
    max_size=40,
)


def _ring() -> tuple[bytearray, OutcomeRing]:
    buffer = bytearray(RING_SIZE)
    return buffer, OutcomeRing(buffer)


@given(_outcomes)
def test_what_goes_in_comes_out_in_order(
    outcomes: list[tuple[int, bool, bytes, str | None, float]],
) -> None:
    buffer, ring = _ring()
    for outcome in outcomes:
        assert ring.append(*outcome)
    assert read_outcomes(buffer) == [(OP_RESULT, *outcome) for outcome in outcomes]


def test_an_empty_ring_holds_nothing() -> None:
    buffer, ring = _ring()
    assert read_outcomes(buffer) == []
    ring.append(1, True, b"x", None, 0.0)
    ring.clear()
    assert read_outcomes(buffer) == []


def test_clear_starts_over_at_the_front() -> None:
    buffer, ring = _ring()
    ring.append(1, True, b"old", None, 0.0)
    ring.clear()
    ring.append(2, False, b"new", "Traceback", 0.5)
    assert read_outcomes(buffer) == [(OP_RESULT, 2, False, b"new", "Traceback", 0.5)]


def test_a_new_writer_continues_after_what_is_committed() -> None:
    buffer, ring = _ring()
    ring.append(1, True, b"a", None, 0.0)
    OutcomeRing(buffer).append(2, True, b"b", None, 0.0)
    assert [m[1] for m in read_outcomes(buffer)] == [1, 2]


def test_an_entry_written_but_not_committed_is_ignored() -> None:
    """A death after the entry's bytes but before the commit word: the entry does not count."""
    buffer, ring = _ring()
    ring.append(1, True, b"kept", None, 0.0)
    committed = bytes(buffer[:8])
    ring.append(2, True, b"torn", None, 0.0)
    buffer[:8] = committed  # the commit store never happened
    assert [m[1] for m in read_outcomes(buffer)] == [1]


@given(st.integers(min_value=0, max_value=200))
def test_a_commit_word_that_cuts_an_entry_keeps_the_whole_ones_before(cut: int) -> None:
    """Whatever the commit word says, only entries wholly below it are read, and reading never fails."""
    buffer, ring = _ring()
    for job_id in (1, 2, 3):
        ring.append(job_id, True, b"p" * 40, "tb", 0.0)
    (full,) = _COMMIT.unpack_from(buffer)
    entry = full // 3
    _COMMIT.pack_into(buffer, 0, cut)
    assert [m[1] for m in read_outcomes(buffer)] == [1, 2, 3][: min(cut, full) // entry]


@given(st.binary(min_size=8, max_size=512))
def test_garbage_never_raises(noise: bytes) -> None:
    buffer = bytearray(RING_SIZE)
    buffer[: len(noise)] = noise
    for message in read_outcomes(buffer):
        assert message[0] == OP_RESULT


def test_the_ring_refuses_a_large_entry_and_when_full() -> None:
    buffer, ring = _ring()
    assert not ring.append(1, True, b"x" * MAX_ENTRY, None, 0.0)
    assert read_outcomes(buffer) == []
    count = 0
    while ring.append(count + 1, True, b"x" * 1000, None, 0.0):
        count += 1
    assert RING_SIZE // 1100 <= count < RING_SIZE // 1000  # every entry has a small header too
    assert len(read_outcomes(buffer)) == count
    ring.clear()
    assert ring.append(99, True, b"x" * 1000, None, 0.0)
