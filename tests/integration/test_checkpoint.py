"""Maps with ``checkpoint=``: a killed caller's rerun skips what was recorded and yields everything once, in order.

Jobs leave one marker file per execution, so a test can tell which items ran, and how often. The file's
records are read here by a parser of its own, written from the format's description.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskpool import CheckpointError, TaskPool

from .. import _seed_jobs as sj

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
N = 60
NEVER = 1 << 30  # a block_from no item reaches


def records(path: Path) -> list[tuple[int, int]]:
    """``(first, count)`` of each whole record of a checkpoint file, in file order."""
    data = path.read_bytes()
    magic = b"taskpool-checkpoint\n"
    assert data.startswith(magic)
    length, crc = struct.unpack_from("<II", data, len(magic))
    offset = len(magic) + 8 + length
    assert zlib.crc32(data[len(magic) + 8 : offset]) == crc
    found = []
    while offset + 24 <= len(data):
        first, count, size, payload_crc, head_crc = struct.unpack_from("<QIIII", data, offset)
        end = offset + 24 + size
        if zlib.crc32(data[offset : offset + 20]) != head_crc or end > len(data):
            break
        if zlib.crc32(data[offset + 24 : end]) != payload_crc:
            break
        found.append((first, count))
        offset = end
    return found


def items(directory: Path, block_from: int = NEVER, n: int = N) -> list[tuple[str, int, int]]:
    return [(str(directory), x, block_from) for x in range(n)]


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


CHILD = """
import sys
from taskpool import TaskPool
from tests import _seed_jobs as sj

directory, path, block_from = sys.argv[1], sys.argv[2], int(sys.argv[3])
with TaskPool(2) as pool:
    for _ in pool.imap(sj.marked_square, [(directory, x, block_from) for x in range(60)], checkpoint=path):
        pass
"""


def test_a_killed_callers_rerun_skips_what_was_recorded(tmp_path: Path, markers: Path) -> None:
    path = tmp_path / "run.ckpt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(markers), str(path), "20"], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        # Items 0-19 finish and are recorded; 20 and 21 then block in the two workers.
        while not path.exists() or sum(c for _, c in records(path)) < 20:
            assert child.poll() is None, "the map ended before it was killed"
            assert time.monotonic() < deadline, "the records did not come"
            time.sleep(0.05)  # polls another process's file: there is no event to wait on
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert sorted(sj.executions(str(markers))) == list(range(20))

    with TaskPool(2) as pool:
        results = list(pool.imap(sj.marked_square, items(markers), checkpoint=path))
    assert results == [x * x for x in range(N)]
    assert sj.executions(str(markers)) == dict.fromkeys(range(N), 1)  # each item ran exactly once
    assert sorted(first for first, _ in records(path)) == list(range(N))


def test_a_torn_last_record_reruns_its_items_alone(tmp_path: Path, markers: Path) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        assert pool.map(sj.marked_square, items(markers), checkpoint=path, chunksize=7) == [
            x * x for x in range(N)
        ]
        last_first, last_count = records(path)[-1]
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size - 3)
        again = list(pool.imap(sj.marked_square, items(markers), chunksize=7, checkpoint=path))
    assert again == [x * x for x in range(N)]
    torn = set(range(last_first, last_first + last_count))
    assert sj.executions(str(markers)) == {x: 2 if x in torn else 1 for x in range(N)}
    assert sum(c for _, c in records(path)) == N


def test_a_complete_checkpoint_returns_everything_without_running_a_job(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        first = pool.map(sj.marked_square, items(markers), checkpoint=path)
        size = path.stat().st_size
        started: list[object] = []
        pool.on("job_submitted", started.append)
        assert pool.map(sj.marked_square, items(markers), checkpoint=path) == first
        unordered = list(pool.imap_unordered(sj.marked_square, items(markers), checkpoint=path))
        assert sorted(unordered) == first
    assert started == []
    assert path.stat().st_size == size
    assert sj.executions(str(markers)) == dict.fromkeys(range(N), 1)


def test_another_functions_checkpoint_is_refused_before_any_job(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        pool.map(sj.marked_square, items(markers, n=5), checkpoint=path)
        before = path.read_bytes()
        with pytest.raises(
            CheckpointError, match=r"not by map\(\) of tests\._seed_jobs\.marked_cube"
        ):
            pool.imap(sj.marked_cube, items(markers, n=5), checkpoint=path)
        with pytest.raises(CheckpointError, match="written by map"):
            pool.starmap(sj.star_draws, [(1, 2)], checkpoint=path)
    assert path.read_bytes() == before
    assert sj.executions(str(markers)) == dict.fromkeys(range(5), 1)


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint at all\n", b'{"index": 0, "ok": true}\n', b"\x00" * 100],
    ids=["text", "taskpool-run-output", "zeros"],
)
def test_a_file_that_is_no_checkpoint_is_refused_and_left_alone(
    tmp_path: Path, markers: Path, content: bytes
) -> None:
    path = tmp_path / "run.ckpt"
    path.write_bytes(content)
    with TaskPool(1) as pool, pytest.raises(CheckpointError, match="not a taskpool checkpoint"):
        pool.map(sj.marked_square, items(markers), checkpoint=path)
    assert path.read_bytes() == content
    assert not os.listdir(markers)


def test_damage_before_the_last_record_is_refused_not_dropped(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        pool.map(sj.marked_square, items(markers), checkpoint=path, chunksize=10)
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF  # inside a record's results, whole records after it
        path.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match="damaged"):
            pool.map(sj.marked_square, items(markers), checkpoint=path, chunksize=10)
    assert path.read_bytes() == bytes(data)


def test_a_failed_job_is_not_recorded_and_its_rerun_runs_it_again(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        with pytest.raises(ValueError, match="item 30 fails"):
            pool.map(sj.fail_on, items(markers, block_from=30), checkpoint=path, chunksize=1)
        recorded = {first for first, _ in records(path)}
        assert 30 not in recorded
        assert set(range(30)) <= recorded
        results = pool.map(sj.fail_on, items(markers), checkpoint=path, chunksize=1)
    assert results == [x * x for x in range(N)]
    ran = sj.executions(str(markers))
    assert all(ran[x] == 1 for x in recorded)
    assert ran[30] == 2


def test_a_resumed_seeded_map_draws_what_an_uninterrupted_one_draws(tmp_path: Path) -> None:
    path = tmp_path / "draws.ckpt"
    n = 800  # more than imap keeps in flight, so that leaving the loop early leaves some unrecorded
    with TaskPool(2, seed=11) as pool:
        whole = pool.map(sj.draws, range(n), chunksize=4)
    with TaskPool(2, seed=11) as pool:
        for i, _ in enumerate(pool.imap(sj.draws, range(n), chunksize=1, checkpoint=path)):
            if i == 25:
                break  # leaves the loop: the file is closed, with some of the map recorded
    assert 25 < sum(c for _, c in records(path)) < n
    with TaskPool(2, seed=11) as pool:
        assert pool.map(sj.draws, range(n), chunksize=5, checkpoint=path) == whole


def test_one_map_at_a_time_writes_a_checkpoint(tmp_path: Path, markers: Path) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        results = pool.imap(sj.marked_square, items(markers), checkpoint=path)
        with pytest.raises(CheckpointError, match="another map"):
            pool.imap(sj.marked_square, items(markers), checkpoint=path)
        assert list(results) == [x * x for x in range(N)]
        assert pool.map(sj.marked_square, items(markers), checkpoint=path) == list(
            x * x for x in range(N)
        )


def test_a_shorter_input_replays_only_what_it_still_has(tmp_path: Path, markers: Path) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(2) as pool:
        pool.map(sj.marked_square, items(markers), checkpoint=path, chunksize=7)
        assert pool.map(sj.marked_square, items(markers, n=30), checkpoint=path, chunksize=7) == [
            x * x for x in range(30)
        ]
        longer = list(pool.imap(sj.marked_square, items(markers, n=N + 5), checkpoint=path))
    assert longer == [x * x for x in range(N + 5)]
    assert sj.executions(str(markers)) == dict.fromkeys(range(N + 5), 1)


def test_the_header_names_the_function(tmp_path: Path, markers: Path) -> None:
    path = tmp_path / "run.ckpt"
    with TaskPool(1) as pool:
        pool.map(sj.marked_square, items(markers, n=2), checkpoint=path)
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 20)
    header = json.loads(data[28 : 28 + length])
    assert header == {"format": 1, "function": "tests._seed_jobs.marked_square", "call": "map"}


def test_imap_goes_on_after_a_failed_item_and_the_input_s_own_error_comes_last(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"

    def broken_input() -> Iterator[tuple[str, int, int]]:
        yield from items(
            markers, block_from=5, n=18
        )  # whole chunks: a chunk cut by the error is not run
        raise OSError("the input broke")

    got: list[object] = []
    with TaskPool(2) as pool:
        results = pool.imap(sj.fail_on, broken_input(), chunksize=3, checkpoint=path)
        while True:
            try:
                got.append(next(results))
            except StopIteration:
                break
            except (ValueError, OSError) as exc:
                got.append(str(exc))
        again = pool.map(sj.fail_on, items(markers, n=20), checkpoint=path, chunksize=3)
    squares = [x * x for x in range(20)]
    assert got == [*squares[:3], "item 5 fails", *squares[6:18], "the input broke"]
    assert again == squares
    # Items 3 and 4 shared the failed job with 5: they ran, were not recorded, and ran again.
    assert sj.executions(str(markers)) == {x: 2 if x in (3, 4, 5) else 1 for x in range(20)}


def test_amap_replays_what_was_recorded_in_its_place_and_runs_only_the_rest(
    tmp_path: Path, markers: Path
) -> None:
    path = tmp_path / "run.ckpt"

    async def collect(pool: TaskPool) -> list[int]:
        results = pool.amap(sj.fail_on, items(markers), chunksize=1, checkpoint=path)
        return [value async for value in results]

    submitted: list[object] = []
    with TaskPool(2) as pool:
        with pytest.raises(ValueError, match="item 30 fails"):
            pool.map(sj.fail_on, items(markers, block_from=30), checkpoint=path, chunksize=1)
        recorded = {first for first, _ in records(path)}
        assert 30 not in recorded
        results = asyncio.run(asyncio.wait_for(collect(pool), 30))
        pool.on("job_submitted", submitted.append)
        again = asyncio.run(asyncio.wait_for(collect(pool), 30))  # all recorded now
    squares = [x * x for x in range(N)]
    assert results == squares
    assert again == squares
    assert submitted == []
    ran = sj.executions(str(markers))
    assert all(ran[x] == 1 for x in recorded)
    assert ran[30] == 2
    assert sum(c for _, c in records(path)) == N
