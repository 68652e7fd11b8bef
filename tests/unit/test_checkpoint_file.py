"""The checkpoint file of a map, alone: what survives, what is cut off, what is refused (no pool)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from taskpool import CheckpointError
from taskpool._pool.checkpoint import MAGIC, Checkpoint


def written(path: Path, chunks: list[tuple[int, list[object]]]) -> bytes:
    ckpt = Checkpoint(path, "mod.fn", "map")
    for first, values in chunks:
        ckpt.add(first, values)
    ckpt.close()
    return path.read_bytes()


def reopened(path: Path) -> Checkpoint:
    ckpt = Checkpoint(path, "mod.fn", "map")
    ckpt.close()
    return ckpt


def test_records_come_back_by_position(tmp_path: Path) -> None:
    path = tmp_path / "c"
    written(path, [(0, [1, 2]), (5, ["a"]), (2, [None, {"k": 3}, 4.5])])
    ckpt = Checkpoint(path, "mod.fn", "map")
    try:
        assert sorted(ckpt.records) == [0, 2, 5]
        assert ckpt.replay(2) == [None, {"k": 3}, 4.5]
        assert [i in ckpt.covered for i in range(7)] == [True] * 6 + [False]
    finally:
        ckpt.close()


@pytest.mark.parametrize("cut", [1, 5, 23, 24, 30])
def test_every_cut_of_the_last_record_drops_it_alone(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "c"
    data = written(path, [(0, [1, 2]), (2, [b"x" * 10])])
    path.write_bytes(data[:-cut])
    ckpt = reopened(path)
    assert sorted(ckpt.records) == [0]
    assert ckpt.torn
    assert path.read_bytes() == written(tmp_path / "first-only", [(0, [1, 2])])


def test_zeros_a_crash_left_past_the_last_record_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c"
    data = written(path, [(0, [1, 2])])
    path.write_bytes(data + b"\0" * 4096)
    ckpt = reopened(path)
    assert sorted(ckpt.records) == [0]
    assert path.read_bytes() == data


@pytest.mark.parametrize("cut", range(1, 40, 3))
def test_a_torn_header_starts_afresh(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "c"
    data = written(path, [])
    path.write_bytes(data[: max(len(data) - cut, 0)])
    assert not reopened(path).records
    assert path.read_bytes() == data


def test_a_flipped_bit_in_an_earlier_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    data = bytearray(written(path, [(0, [1, 2]), (2, [3])]))
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        reopened(path)
    assert path.read_bytes() == bytes(data)


def test_overlapping_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    written(path, [(0, [1, 2]), (1, [3]), (4, [5])])
    with pytest.raises(CheckpointError, match="recorded already"):
        reopened(path)


def test_another_call_or_function_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    written(path, [(0, [1])])
    with pytest.raises(CheckpointError, match=r"written by map\(\) of mod\.fn, not by starmap"):
        Checkpoint(path, "mod.fn", "starmap")
    with pytest.raises(CheckpointError, match=r"not by map\(\) of mod\.other"):
        Checkpoint(path, "mod.other", "map")


def test_a_file_that_starts_otherwise_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c"
    path.write_bytes(MAGIC[:5] + b"?")
    with pytest.raises(CheckpointError, match="not a taskpool checkpoint"):
        reopened(path)


def test_a_result_that_does_not_pickle_is_left_unrecorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c"
    with caplog.at_level(logging.WARNING, "taskpool"):
        written(path, [(0, [1]), (1, [threading.Lock()]), (2, [3])])
    assert "items 1.. are not recorded" in caplog.text
    assert sorted(reopened(path).records) == [0, 2]


def test_an_unreachable_path_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot open it"):
        Checkpoint(tmp_path / "missing" / "c", "mod.fn", "map")


@pytest.mark.parametrize("path", [os.devnull, "fifo"])
def test_a_path_that_is_not_a_regular_file_is_a_checkpoint_error(tmp_path: Path, path: str) -> None:
    if path == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no named pipes here")
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    with pytest.raises(CheckpointError, match="not a regular file"):
        Checkpoint(path, "mod.fn", "map")
