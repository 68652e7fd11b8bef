"""The process backend's wire protocol: frames and messages, through real pipes but no processes."""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import pickle
import struct
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import taskpool._backends.process as process_package
from taskpool._backends.process import protocol
from taskpool._backends.process.protocol import (
    FrameReader,
    FrameWriter,
    Op,
    decode,
    encode,
    read_frame,
    wrap,
    write_frame,
)
from taskpool._runtime.serialize import OUT_OF_BAND_MIN

_HEAD = struct.Struct("!QI")
# Larger than the reader's chunk, so that such a frame takes the path that reads into a buffer of its own.
_BIG = 300 * 1024
_PIPE_ROOM = 64 * 1024  # what an empty pipe takes in one write everywhere this runs


def _plain(obj: Any) -> Any:
    """``obj`` with every buffer turned into bytes, so that what was sent and what came back compare equal."""
    if isinstance(obj, pickle.PickleBuffer):
        return bytes(obj.raw())
    if isinstance(obj, memoryview | bytearray):
        return bytes(obj)
    if isinstance(obj, tuple):
        return tuple(_plain(x) for x in obj)
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    return obj


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=64),
)
# Payloads around the thresholds: in the pickle or out of band, in a frame smaller or larger than a read.
_sizes = st.sampled_from([0, 1, OUT_OF_BAND_MIN - 1, OUT_OF_BAND_MIN, _BIG])


@st.composite
def _payloads(draw: st.DrawFn) -> Any:
    size = draw(_sizes)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return wrap(data) if draw(st.booleans()) else data


_messages = st.tuples(
    st.sampled_from(list(Op)).map(int), _scalars, st.one_of(_scalars, _payloads())
)
_batches = st.lists(_messages, min_size=0, max_size=4)


def _stream(batches: list[list[Any]]) -> bytes:
    return b"".join(bytes(piece) for batch in batches for piece in encode(batch))


@contextlib.contextmanager
def _pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    with _pipe() as fds:
        yield fds


def _drain(reader: FrameReader, w: int, stream: bytes, cuts: list[int]) -> list[Any]:
    """Write ``stream`` cut at ``cuts`` (and into pieces an empty pipe takes), reading after every write."""
    frames: list[Any] = []
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    for start, end in itertools.pairwise(bounds):
        for at in range(start, end, _PIPE_ROOM):
            piece = stream[at : min(end, at + _PIPE_ROOM)]
            assert os.write(w, piece) == len(piece)
            frames.extend(reader.read())
    os.close(w)
    while True:
        try:
            frames.extend(reader.read())
        except EOFError:
            return frames


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(_batches, max_size=4), cuts=st.lists(st.integers(0, 10**6), max_size=30))
@example(batches=[[(int(Op.RESULT), 1, b"x" * _BIG)]], cuts=[1, 12, 13])
@example(batches=[[(int(Op.RESULT), 1, wrap(b"x" * _BIG))]], cuts=[12, 20, 40])
def test_any_split_of_the_stream_gives_back_the_frames(
    batches: list[list[Any]], cuts: list[int]
) -> None:
    with _pipe() as (r, w):
        reader = FrameReader(r)
        os.set_blocking(w, False)
        assert _plain(_drain(reader, w, _stream(batches), cuts)) == _plain(batches)


@settings(max_examples=40, deadline=None)
@given(batch=_batches)
def test_encode_and_decode_round_trip(batch: list[Any]) -> None:
    data = _stream([batch])
    total, nbuf = _HEAD.unpack_from(data)
    assert total == len(data)
    assert nbuf == sum(isinstance(x, pickle.PickleBuffer) for m in batch for x in m)
    assert _plain(decode(memoryview(data)[_HEAD.size :], nbuf, total)) == _plain(batch)


@settings(max_examples=20, deadline=None)
@given(batches=st.lists(_batches, min_size=1, max_size=4))
def test_the_writer_writes_what_the_pipe_takes_and_the_rest_later(
    batches: list[list[Any]],
) -> None:
    with _pipe() as (r, w):
        reader, writer = FrameReader(r), FrameWriter(w)
        frames: list[Any] = []
        for batch in batches:
            writer.queue(batch)
        for _ in range(1000):
            done = writer.flush()
            frames.extend(reader.read())
            if done:
                break
        assert done
        assert _plain(frames) == _plain(batches)


def test_a_frame_cut_short_by_the_writer_ending_is_end_of_file(pipe: tuple[int, int]) -> None:
    r, w = pipe
    reader = FrameReader(r)
    whole = _stream([[(int(Op.READY), 1)]])
    os.write(w, whole + whole[:5])
    os.close(w)
    assert reader.read() == [[(int(Op.READY), 1)]]
    with pytest.raises(EOFError):
        reader.read()


def test_a_reader_with_nothing_to_read_returns_no_frame(pipe: tuple[int, int]) -> None:
    assert FrameReader(pipe[0]).read() == []


def test_blocking_frames_round_trip(pipe: tuple[int, int]) -> None:
    r, w = pipe
    batch = [protocol.ready_message(7), protocol.log_message(0, b"record")]
    write_frame(w, batch)
    assert read_frame(r) == batch
    os.close(w)
    with pytest.raises(EOFError):
        read_frame(r)


def test_messages_carry_plain_ints_and_their_documented_fields() -> None:
    built = [
        protocol.define_message(1, b"fn"),
        protocol.run_message(2, 1, 0, b"args", protocol.FLAG_SYNC, "job"),
        protocol.QUIT,
        protocol.ready_message(3),
        protocol.init_failed_message("ValueError: no"),
        protocol.started_message(2),
        protocol.result_message(2, True, b"value", None, 0.5),
        protocol.log_message(2, b"record"),
        protocol.forget_message((1, 4)),
        protocol.skipped_message(2),
        protocol.over_memory_message(2_100_000_000),
        protocol.release_message((5, 6)),
    ]
    assert [m[0] for m in built] == list(Op)
    assert [len(m) for m in built] == [3, 8, 1, 2, 2, 2, 6, 3, 2, 2, 2, 2]
    for message in built:
        assert type(message[0]) is int  # an Op member would pickle as a reference to its class
        assert b"Op" not in pickle.dumps(message, protocol=5)


def test_the_protocol_imports_where_fcntl_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    name = protocol.__name__
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl now raises ImportError
    monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(process_package, "protocol", protocol)  # put back after the fresh import
    fresh = importlib.import_module(name)
    assert fresh is not protocol
    r, w = os.pipe()
    try:
        fresh.enlarge_pipe(w)  # keeps the default size, raises nothing
    finally:
        os.close(r)
        os.close(w)
