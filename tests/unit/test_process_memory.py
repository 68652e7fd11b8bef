"""Memory caps and OOM kills: the size parser, the worker's check, and telling an OOM kill (no process)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from taskpool._backends.process import lifecycle
from taskpool._backends.process.memory import (
    MemoryCheck,
    format_size,
    oom_events_paths,
    oom_killed,
    oom_kills,
    read_oom_kills,
)
from taskpool._pool.sizes import parse_size

V2_EVENTS = "low 0\nhigh 0\nmax 12\noom 3\noom_kill {}\noom_group_kill 0\n"
V1_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill {}\n"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (512, 512),
        ("512MB", 512 * 10**6),
        ("2GiB", 2 * 2**30),
        ("1.5G", 1_500_000_000),
        ("2 gb", 2 * 10**9),
        ("100k", 100_000),
        ("64KiB", 65536),
        ("1000", 1000),
        (".5TB", 5 * 10**11),
    ],
)
def test_sizes_people_write(text: object, size: int) -> None:
    assert parse_size("limit", text) == size


def test_no_size_is_no_limit() -> None:
    assert parse_size("limit", None) is None


@pytest.mark.parametrize("bad", ["", "GB", "2 XB", "1e9", "0.0001B", 0, -1, True, 2.5, [1]])
def test_what_is_not_a_positive_size_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="limit must be a positive number of bytes"):
        parse_size("limit", bad)


def test_sizes_read_in_decimal_units() -> None:
    assert format_size(2_100_000_000) == "2.1 GB"
    assert format_size(2 * 2**30) == "2.1 GB"
    assert format_size(200_000_000) == "200.0 MB"
    assert format_size(999) == "999 B"
    assert format_size(3 * 10**12) == "3.0 TB"


def test_the_check_measures_only_past_the_limit() -> None:
    assert MemoryCheck(10**15).over() is None  # far past any machine's memory: nothing to read
    used = MemoryCheck(1).over()
    assert used is not None
    assert used > 1_000_000


def _cgroup(tmp_path: Path, proc: str) -> tuple[str, Path]:
    proc_cgroup = tmp_path / "cgroup"
    proc_cgroup.write_text(proc)
    return str(proc_cgroup), tmp_path / "sys"


def test_a_v2_cgroup_counts_oom_kills_in_memory_events(tmp_path: Path) -> None:
    proc_cgroup, root = _cgroup(tmp_path, "0::/user.slice/pool.scope\n")
    events = root / "user.slice" / "pool.scope" / "memory.events"
    events.parent.mkdir(parents=True)
    events.write_text(V2_EVENTS.format(4))
    paths = oom_events_paths(proc_cgroup, str(root))
    assert paths == [str(events)]
    assert oom_kills(paths) == 4
    events.write_text(V2_EVENTS.format(5))
    assert oom_kills(paths) == 5


def test_a_v1_cgroup_counts_oom_kills_in_oom_control(tmp_path: Path) -> None:
    proc_cgroup, root = _cgroup(tmp_path, "4:memory:/docker/abc\n1:cpu:/\n0::/\n")
    control = root / "memory" / "docker" / "abc" / "memory.oom_control"
    control.parent.mkdir(parents=True)
    control.write_text(V1_CONTROL.format(0))
    paths = oom_events_paths(proc_cgroup, str(root))
    assert paths == [str(control)]
    assert read_oom_kills(paths[0]) == 0


def test_no_cgroup_no_count(tmp_path: Path) -> None:
    assert oom_events_paths(str(tmp_path / "missing")) == []
    assert oom_kills([]) is None
    (tmp_path / "memory.events").write_text("low 0\n")
    assert read_oom_kills(str(tmp_path / "memory.events")) is None


def test_an_oom_kill_is_a_sigkill_while_the_count_rose() -> None:
    sigkill = -signal.SIGKILL
    assert oom_killed(sigkill, 4, 5)
    assert not oom_killed(sigkill, 4, 4)  # someone else's SIGKILL
    assert not oom_killed(-signal.SIGSEGV, 4, 5)  # a segfault while another process was OOM-killed
    assert not oom_killed(0, 4, 5)
    assert not oom_killed(sigkill, None, 5)  # no count where the worker started: no guess
    assert not oom_killed(sigkill, 4, None)


def test_worker_exited_says_why_a_worker_ended_by_itself() -> None:
    assert lifecycle._crash_reason(-signal.SIGKILL, True) == "killed by the out-of-memory killer"
    assert lifecycle._crash_reason(-signal.SIGKILL, False) == "killed by SIGKILL"
    assert lifecycle._crash_reason(-200, False) == "killed by signal 200"
    assert lifecycle._crash_reason(3, False) == "exited with code 3"
    assert lifecycle._crash_reason(None, False) == "lost"
