"""How many CPUs this process may use: the default number of workers of `TaskPool` and `Pool`, and the native
threads each worker may run (`threads_per_worker`).

``os.cpu_count()`` counts the machine's CPUs, not the ones this process may run on: in a container limited to two
CPUs, or under ``taskset -c 0``, a pool of one worker per machine CPU only makes workers wait for each other. So
the default is the CPUs in the process's affinity mask, further limited by a Linux cgroup CPU quota (what
``docker run --cpus`` and Kubernetes CPU limits set), rounded up, and never less than 1.

Pure reads of a few small files; runs in the caller's thread (a pool's constructor).
"""

from __future__ import annotations

import math
import os

from .common import check_whole

__all__ = ["cgroup_cpu_limit", "threads_per_worker", "usable_cpus"]

# Plain paths: pathlib's import would cost every program that imports taskpool more than these reads do.
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"
#: A path as the functions here take it.
PathLike = str | os.PathLike[str]

# Where cgroup v1 mounts the cpu controller, under the cgroup root (distributions differ).
_V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def usable_cpus(root: PathLike = CGROUP_ROOT, proc_cgroup: PathLike = PROC_CGROUP) -> int:
    """The number of CPUs this process may use: its affinity, limited by a cgroup CPU quota; at least 1.

    Args:
        root: where the cgroup file system is mounted (a parameter so that tests can give fake files).
        proc_cgroup: the file naming this process's cgroups.
    """
    count = _affinity_cpus()
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        count = min(count, limit)
    return max(1, count)


def _affinity_cpus() -> int:
    process_cpu_count = getattr(
        os, "process_cpu_count", None
    )  # 3.13+: the affinity mask, where there is one
    if process_cpu_count is not None:
        count: int | None = process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:  # macOS, Windows: no affinity mask to read
        count = os.cpu_count()
    return count or 1


def cgroup_cpu_limit(
    root: PathLike = CGROUP_ROOT, proc_cgroup: PathLike = PROC_CGROUP
) -> int | None:
    """The CPUs a cgroup CPU quota allows this process (quota / period, rounded up), or None without one.

    cgroup v2 writes the quota in ``cpu.max`` as ``"QUOTA PERIOD"`` (``"max PERIOD"``: no quota); v1 in
    ``cpu.cfs_quota_us`` (-1: no quota) and ``cpu.cfs_period_us``. The process's own cgroup and each of its
    ancestors up to the root are read, since a quota set on a parent binds its children; the smallest wins.
    """
    limits = [
        limit
        for directory in _candidate_dirs(root, proc_cgroup)
        if (limit := _read_limit(directory)) is not None
    ]
    return min(limits) if limits else None


def _candidate_dirs(root: PathLike, proc_cgroup: PathLike) -> list[str]:
    """The cgroup directories whose quota binds this process: its own cgroup's and its ancestors'."""
    v2_path, v1_path = "", ""
    lines = (_read(proc_cgroup) or "").splitlines()
    for line in lines:  # "0::/path" for v2; "4:cpu,cpuacct:/path" for v1
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    top = os.path.normpath(os.fspath(root))
    dirs: list[str] = []
    mounts = [(top, v2_path)] + [(os.path.join(top, name), v1_path) for name in _V1_CPU_MOUNTS]
    for mount, path in mounts:
        # Inside a container the path may name the host's hierarchy, which is not mounted here: skip the
        # parts that do not exist and read the mount's root, which is the container's own cgroup.
        current = os.path.join(mount, path.strip("/")) if path.strip("/") else mount
        while True:
            if os.path.isdir(current):
                dirs.append(current)
            if current == mount:
                break
            current = os.path.dirname(current)
    return dirs


def _read(path: PathLike) -> str | None:
    """The text of a small file, or None where it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, ValueError):
        return None


def _read_limit(directory: str) -> int | None:
    text = _read(os.path.join(directory, "cpu.max"))
    if text is not None:
        quota_text, _, period_text = text.strip().partition(" ")
    else:
        quota = _read(os.path.join(directory, "cpu.cfs_quota_us"))
        period = _read(os.path.join(directory, "cpu.cfs_period_us"))
        if quota is None or period is None:
            return None
        quota_text, period_text = quota.strip(), period.strip()
    try:
        quota_n, period_n = int(quota_text), int(period_text)
    except ValueError:  # "max": no quota
        return None
    if quota_n <= 0 or period_n <= 0:  # -1: no quota (v1)
        return None
    return max(1, math.ceil(quota_n / period_n))


def threads_per_worker(limit_threads: bool | int, workers: int) -> int | None:
    """The native threads each worker may run, from ``TaskPool(limit_threads=...)``: None for no cap.

    Raises:
        TypeError, ValueError: it is neither a bool nor a whole number of at least 1.
    """
    if limit_threads is True:
        return max(1, usable_cpus() // workers)
    if limit_threads is False:
        return None
    check_whole("limit_threads", limit_threads, 1, optional=False)
    return limit_threads
