"""The wake pipe between caller threads and the process backend's scheduler thread."""

from __future__ import annotations

import dataclasses
import os
import select

import pytest

from taskpool._backends.process.inbox import QuitRequest, Wakeup


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_a_burst_of_wake_ups_writes_one_byte_and_drain_rearms() -> None:
    wakeup = Wakeup()
    try:
        assert not _readable(wakeup.r)
        for _ in range(3):
            wakeup.wake()
        assert wakeup.pending
        assert os.read(wakeup.r, 10) == b"\0"  # one byte for the burst
        wakeup.drain()
        assert not wakeup.pending
        assert not _readable(wakeup.r)
        wakeup.wake()
        assert _readable(wakeup.r)
    finally:
        wakeup.close()


def test_waking_after_close_is_harmless() -> None:
    wakeup = Wakeup()
    wakeup.close()
    wakeup.wake()
    wakeup.drain()


def test_requests_are_distinct_immutable_records() -> None:
    assert QuitRequest(True) == QuitRequest(True) != QuitRequest(False)
    request = QuitRequest(True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.wait = False  # type: ignore[misc]
    assert not hasattr(request, "__dict__")
