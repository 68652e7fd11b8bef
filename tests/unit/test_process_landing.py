"""Frames land in the objects they become: a large read-only buffer is read straight into a `bytes` object,
and unpickling returns that very object (no process is started; pipes only)."""

from __future__ import annotations

import os
import pickle
import select
import threading
from typing import Any

from taskpool._backends.process.landing import READONLY, Body, new_bytes
from taskpool._backends.process.protocol import FrameReader, encode, read_frame
from taskpool._runtime.serialize import _rebuild_bytes, dumps_split, loads

BIG = 3 * 1024 * 1024 + 5


def _write_all(fd: int, messages: list[object]) -> threading.Thread:
    """Write one frame to ``fd`` from a thread (the pipe holds less than the frame), then close it."""

    def run() -> None:
        for piece in encode(messages):
            view = memoryview(piece).cast("B")
            while view.nbytes:
                view = view[os.write(fd, view) :]
        os.close(fd)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_rebuild_bytes_returns_the_bytes_a_whole_view_shows() -> None:
    data = bytes(range(256)) * 300
    assert _rebuild_bytes(memoryview(data)) is data
    assert _rebuild_bytes(memoryview(data)[1:]) == data[1:]
    assert _rebuild_bytes(memoryview(data)[::-1]) == data[::-1]
    assert _rebuild_bytes(bytearray(b"abc")) == b"abc"


def test_new_bytes_is_filled_in_place() -> None:
    obj, view = new_bytes(10)
    view[:] = b"0123456789"
    assert obj == b"0123456789"


def test_a_body_puts_large_read_only_buffers_in_bytes_and_the_rest_in_bytearrays() -> None:
    body = Body(3, [READONLY | BIG, 70_000, READONLY | 10])
    assert [t.nbytes for t in body.targets()] == [3, BIG, 70_000, 10]
    pieces = [type(b.obj) for b in body._buffers]
    assert pieces == [bytes, bytearray, bytearray]


def test_a_large_bytes_result_lands_in_the_object_it_becomes() -> None:
    value = os.urandom(BIG)
    r, w = os.pipe()
    writer = _write_all(w, [("result", dumps_split(value, "result", "worker"))])
    reader = FrameReader(r)
    frames: list[list[Any]] = []
    while not frames:
        assert select.select([r], [], [], 10)[0], "the frame did not come"
        frames = reader.read()
    writer.join(10)
    os.close(r)
    ((_, payload),) = frames[0]
    assert type(payload) is tuple
    landed = payload[1][0]
    assert type(landed) is memoryview
    assert type(landed.obj) is bytes
    result = loads(payload)
    assert result == value
    assert result is landed.obj


def test_a_worker_reads_a_large_bytes_argument_straight_into_a_bytes() -> None:
    value = os.urandom(BIG)
    r, w = os.pipe()
    writer = _write_all(w, [("run", dumps_split(((value,), {}), "arguments", "parent"))])
    ((_, payload),) = read_frame(r)
    writer.join(10)
    os.close(r)
    (arg,), _ = loads(payload)
    assert arg == value
    assert arg is payload[1][0].obj
    assert pickle.loads(pickle.dumps(arg)) == value
