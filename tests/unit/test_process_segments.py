"""Large buffers through shared memory, without processes: segments lent and reused, descriptors over a
socket, frames that carry descriptors instead of bytes, and the fallback to the pipe when memfd fails."""

from __future__ import annotations

import errno
import logging
import os
import pickle
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskpool._backends.process import lender, segments
from taskpool._backends.process.protocol import decode, encode
from taskpool._runtime import shm
from taskpool._runtime.serialize import dumps_split, loads

pytestmark = pytest.mark.skipif(
    not segments.shm_supported(), reason="shared memory transport is Linux-only"
)

MIB = 1024 * 1024


@pytest.fixture
def links() -> Iterator[tuple[segments.Link, segments.Link]]:
    """Two ends of one link, in this process: ``a`` lends to ``b``."""
    pair = segments.socket_pair()
    assert pair is not None
    a = segments.Link(pair[0], lender.SegmentPool(), 7, False)
    b = segments.Link(pair[1], lender.SegmentPool(), 0, True)
    yield a, b
    a.close()
    b.close()
    a.pool.close()
    b.pool.close()


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let `shm.warn_once` warn again in this test."""
    monkeypatch.setattr(shm, "_warned", type(shm._warned)())


def _memfds() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if "memfd:taskpool" in os.readlink(f"/proc/self/fd/{name}"):
                count += 1
        except OSError:
            pass
    return count


def _frame(messages: list[Any], lend: Any, land: Any) -> list[Any]:
    pieces = encode(messages, lend)
    body = b"".join(bytes(p) for p in pieces[1:])
    total, nbuf = int.from_bytes(pieces[0][:8], "big"), int.from_bytes(pieces[0][8:12], "big")
    return decode(memoryview(body), nbuf, total, land)


def test_size_classes_are_powers_of_two_of_at_least_a_page() -> None:
    assert shm.size_class(1) == shm.PAGE
    assert shm.size_class(MIB) == MIB
    assert shm.size_class(MIB + 1) == 2 * MIB


def test_a_writable_buffer_lands_mapped_and_its_segment_is_reused_once_released(
    links: tuple[segments.Link, segments.Link],
) -> None:
    a, b = links
    data = bytearray(os.urandom(2 * MIB))
    token = a.lend(memoryview(data))
    assert token is not None
    landed = b.land(token, len(data), readonly=False)
    assert type(landed).__name__ == "mmap"
    assert landed[:] == data
    assert not b.released
    del landed  # the finalizer gives it back
    released = b.take_released()
    assert released == (token,)
    a.pool.release(released)
    fds = _memfds()
    again = a.lend(memoryview(data))
    assert again is not None
    assert again != token
    assert _memfds() == fds, "the released segment was reused, not a new one made"
    b.land(again, len(data), readonly=False)


def test_a_read_only_buffer_lands_in_bytes_and_is_released_at_once(
    links: tuple[segments.Link, segments.Link],
) -> None:
    a, b = links
    data = os.urandom(MIB + 3)
    token = a.lend(memoryview(data))
    assert token is not None
    landed = b.land(token, len(data), readonly=True)
    assert type(landed.obj) is bytes
    assert landed.obj == data
    assert b.take_released() == (token,)


def test_small_buffers_stay_in_the_pipe(links: tuple[segments.Link, segments.Link]) -> None:
    a, _b = links
    assert a.lend(memoryview(bytes(segments.SHM_MIN - 1))) is None


def test_a_dead_borrower_gives_back_everything_lent_to_it(
    links: tuple[segments.Link, segments.Link],
) -> None:
    a, _b = links
    tokens = [a.lend(memoryview(bytes(MIB))) for _ in range(3)]
    assert None not in tokens
    a.pool.reclaim(7)
    fds = _memfds()
    a.lend(memoryview(bytes(MIB)))
    assert _memfds() == fds


def test_idle_segments_beyond_the_cap_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lender, "IDLE_MAX", 2 * MIB)
    pool = lender.SegmentPool()
    before = _memfds()
    got = [pool.fill(memoryview(bytes(MIB)), 1) for _ in range(4)]
    assert _memfds() == before + 4
    pool.release([g[0] for g in got if g is not None])
    assert _memfds() == before + 2
    pool.close()
    assert _memfds() == before


def test_lent_segments_beyond_the_cap_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lender, "LENT_MAX", 2)
    pool = lender.SegmentPool()
    before = _memfds()
    got = [pool.fill(memoryview(bytes(MIB)), 1) for _ in range(5)]
    assert _memfds() == before + 2
    pool.release([g[0] for g in got if g is not None])  # the forgotten ones are ignored
    pool.close()
    assert _memfds() == before


_sizes = st.sampled_from([0, 1, 64 * 1024, MIB - 1, MIB, 3 * MIB + 5])


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(_sizes, max_size=4), readonly=st.lists(st.booleans(), min_size=4))
def test_frames_round_trip_whichever_buffers_go_through_shared_memory(
    sizes: list[int], readonly: list[bool]
) -> None:
    pair = segments.socket_pair()
    assert pair is not None
    a = segments.Link(pair[0], lender.SegmentPool(), 1, False)
    b = segments.Link(pair[1], lender.SegmentPool(), 0, True)
    try:
        values: list[Any] = [
            bytes(os.urandom(n)) if ro else bytearray(os.urandom(n))
            for n, ro in zip(sizes, readonly, strict=False)
        ]
        payload = dumps_split(values, "result", "worker")
        messages = [(6, 1, True, payload, None, 0.1), (8, "stdout", "x\n")]
        out = _frame(messages, a.lend, b.land)
        assert loads(out[0][3]) == values
        assert out[1] == messages[1]
    finally:
        for link in (a, b):
            link.close()
            link.pool.close()


def test_a_frame_naming_shared_memory_needs_a_link() -> None:
    pair = segments.socket_pair()
    assert pair is not None
    a = segments.Link(pair[0], lender.SegmentPool(), 1, False)
    try:
        with pytest.raises(EOFError, match="shared memory"):
            _frame([pickle.PickleBuffer(bytearray(2 * MIB))], a.lend, None)
    finally:
        a.close()
        a.pool.close()
        pair[1].close()


def test_without_memfd_buffers_go_through_the_pipe_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    links: tuple[segments.Link, segments.Link],
    fresh_warning: None,
) -> None:
    def refused(*args: Any) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    a, b = links
    data = [bytearray(os.urandom(2 * MIB)) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="taskpool"):
        out = _frame([dumps_split(data, "result", "worker")], a.lend, b.land)
        assert not shm.probe()
    assert loads(out[0]) == data
    warnings = [r for r in caplog.records if "shared memory is not available" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "memfd_create failed" in warnings[0].getMessage()


def test_a_segment_that_cannot_be_filled_falls_back_to_the_pipe(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    links: tuple[segments.Link, segments.Link],
    fresh_warning: None,
) -> None:
    def full(fd: int, view: memoryview, offset: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shm, "write_all", full)
    a, b = links
    before = _memfds()
    with caplog.at_level(logging.WARNING, logger="taskpool"):
        data = pickle.PickleBuffer(bytearray(b"x" * (2 * MIB)))
        out = _frame([data, data], a.lend, b.land)
    assert [bytes(o) for o in out] == [b"x" * (2 * MIB)] * 2
    assert _memfds() == before, "the segment that could not be filled was closed"
    assert len([r for r in caplog.records if "could not be filled" in r.getMessage()]) == 1


def test_descriptors_that_never_come_raise_rather_than_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segments, "_RECV_WAIT", 0.05)
    pair = segments.socket_pair()
    assert pair is not None
    parent = segments.FdChannel(pair[0], blocking=False)
    try:
        with pytest.raises(TimeoutError):
            parent.take(12345)
    finally:
        parent.close()
        pair[1].close()


def test_memoryviews_pickle_and_come_back_with_their_format_and_shape() -> None:
    import array

    values = array.array("d", range(300_000))
    view = memoryview(values)
    main, buffers = dumps_split([view, view[::2], memoryview(b"ab")], "arguments", "parent")
    back = pickle.loads(main, buffers=buffers)
    assert [v.tolist() for v in back] == [view.tolist(), view[::2].tolist(), [97, 98]]
    assert back[0].format == "d"
    assert back[1].format == "d"


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="mappings hold no descriptor from 3.13")
def test_past_the_mapping_cap_writable_buffers_are_copied(
    monkeypatch: pytest.MonkeyPatch, links: tuple[segments.Link, segments.Link]
) -> None:
    monkeypatch.setattr(shm, "MAPPED_MAX", 0)
    a, b = links
    token = a.lend(memoryview(bytearray(2 * MIB)))
    assert token is not None
    landed = b.land(token, 2 * MIB, readonly=False)
    assert type(landed.obj) is bytearray
    assert not landed.readonly
    assert b.take_released() == (token,)
