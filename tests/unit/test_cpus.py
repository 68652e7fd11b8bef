"""The default number of workers: the CPUs this process may use, from fake cgroup files (no processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskpool._pool import cpus
from taskpool._pool.cpus import cgroup_cpu_limit, usable_cpus


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the affinity mask held eight CPUs."""
    monkeypatch.setattr(cpus, "_affinity_cpus", lambda: 8)


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2),
        ("150000 100000\n", 2),  # 1.5 CPUs: rounded up, so that the quota is used whole
        ("50000 100000\n", 1),  # half a CPU: still one worker
        ("", None),
    ],
)
def test_cgroup_v2_cpu_max_gives_the_limit(
    tmp_path: Path, cpu_max: str, expected: int | None
) -> None:
    write(tmp_path / "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path, tmp_path / "missing") == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [
        ("-1", "100000", None),
        ("300000", "100000", 3),
        ("250000", "100000", 3),
        ("1000", "100000", 1),
    ],
)
def test_cgroup_v1_cfs_quota_gives_the_limit(
    tmp_path: Path, quota: str, period: str, expected: int | None
) -> None:
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us", quota + "\n")
    write(tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us", period + "\n")
    write(tmp_path / "self-cgroup", "4:cpu,cpuacct:/\n3:memory:/\n")
    assert cgroup_cpu_limit(tmp_path, tmp_path / "self-cgroup") == expected


def test_a_quota_on_the_process_cgroup_or_an_ancestor_binds_the_smallest_wins(
    tmp_path: Path,
) -> None:
    write(tmp_path / "self-cgroup", "0::/outer/inner\n")
    write(tmp_path / "outer" / "cpu.max", "300000 100000\n")
    write(tmp_path / "outer" / "inner" / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path, tmp_path / "self-cgroup") == 3
    write(tmp_path / "outer" / "inner" / "cpu.max", "100000 100000\n")
    assert cgroup_cpu_limit(tmp_path, tmp_path / "self-cgroup") == 1


def test_a_cgroup_path_of_the_host_not_mounted_here_falls_back_to_the_mount_root(
    tmp_path: Path,
) -> None:
    write(tmp_path / "self-cgroup", "0::/docker/0123abcd\n")
    write(tmp_path / "cpu.max", "200000 100000\n")
    assert cgroup_cpu_limit(tmp_path, tmp_path / "self-cgroup") == 2


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path / "absent-too") is None


@pytest.mark.usefixtures("eight_cpus")
def test_usable_cpus_is_the_affinity_limited_by_the_quota(tmp_path: Path) -> None:
    assert usable_cpus(tmp_path, tmp_path / "missing") == 8
    write(tmp_path / "cpu.max", "300000 100000\n")
    assert usable_cpus(tmp_path, tmp_path / "missing") == 3
    write(tmp_path / "cpu.max", "5000000 100000\n")  # a quota above the affinity does not raise it
    assert usable_cpus(tmp_path, tmp_path / "missing") == 8


def test_usable_cpus_is_never_less_than_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpus, "_affinity_cpus", lambda: 0)
    assert usable_cpus(tmp_path, tmp_path / "missing") == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_usable_cpus_here_is_at_most_the_affinity() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))
