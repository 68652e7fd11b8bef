"""Memory of worker processes: a worker's own check against ``max_memory_per_worker``, and OOM kills.

Runs in two places:

- Each worker process, main thread, after each job (`MemoryCheck`): is the worker's private memory past its
  limit? Then it finishes reporting the job and exits, and the pool replaces it.
- The scheduler thread of the parent (`oom_kills`, `oom_killed`, `format_size`): did the kernel's
  out-of-memory killer end a worker that died by SIGKILL?

**What is measured.** The unique set size (USS): the pages that only this process maps, from
``/proc/self/smaps_rollup`` (``Private_Clean + Private_Dirty + Private_Hugetlb``). Shared mappings (a
shared-memory argument, libraries other processes map too, pages still shared with the forkserver after a
fork) do not count: replacing the worker would not give them back. Reading that file walks every mapping of
the process (0.35 to 1.8 ms measured for a worker with numpy imported), too slow to pay after each of
thousands of tiny jobs, so two cheaper numbers come first: the peak resident size (``getrusage``, 1-3
µs), which no USS can exceed, and then the current resident size (``/proc/self/statm``, about 15 µs). The
USS is read only when both are past the limit, and then at most once per `RECHECK_INTERVAL` while it stays
under the limit.

**Without /proc** (macOS, old kernels): psutil's USS if psutil is installed, otherwise the peak resident size
from ``getrusage``. The peak never goes down, and it counts shared pages: a worker that went past the limit
once is replaced after its next job even if it has freed the memory since.

**OOM kills.** The kernel counts the processes its OOM killer ends in each cgroup: ``oom_kill`` in
``memory.events`` (cgroup v2) or ``memory.oom_control`` (v1). Workers live in their pool's cgroup. The scheduler
reads the count when a worker starts and again when a worker ends by SIGKILL that the pool did not send; if
it rose, the kernel killed it (or another process of the cgroup at the same moment: the count cannot say
which). Imports the standard library only (a worker imports this module).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections.abc import Callable

__all__ = [
    "RECHECK_INTERVAL",
    "MemoryCheck",
    "format_size",
    "oom_events_paths",
    "oom_killed",
    "oom_kills",
    "read_oom_kills",
]

#: While a worker's USS is under its limit but its resident size is over it, the USS is read again at most
#: this often. Longer: less time reading /proc on a worker full of shared pages; shorter: a worker past its
#: limit is replaced fewer jobs later.
RECHECK_INTERVAL = 0.05
_SMAPS = "/proc/self/smaps_rollup"
_STATM = "/proc/self/statm"
_PRIVATE = (b"Private_Clean:", b"Private_Dirty:", b"Private_Hugetlb:")
# getrusage's ru_maxrss is in kilobytes on Linux and the BSDs, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT


def _smaps_uss() -> int:
    with open(_SMAPS, "rb") as f:
        data = f.read()
    return (
        sum(int(line.split()[1]) for line in data.splitlines() if line.startswith(_PRIVATE)) * 1024
    )


def _statm_rss() -> int:
    with open(_STATM, "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _private_memory() -> tuple[Callable[[], int], Callable[[], int] | None]:
    """How to measure this process's private memory here, and a cheaper upper bound of it (or None)."""
    try:
        _smaps_uss()
        _statm_rss()
    except (OSError, ValueError, IndexError):
        pass
    else:
        return _smaps_uss, _statm_rss
    try:
        import psutil  # optional: imported only where /proc is missing
    except ImportError:
        return _peak_rss, None
    process = psutil.Process()
    return (lambda: int(process.memory_full_info().uss)), None


class MemoryCheck:
    """Is this worker's private memory past ``limit`` bytes? Asked after each job (worker, main thread)."""

    __slots__ = ("_bound", "_limit", "_measure", "_not_before")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._measure, self._bound = _private_memory()
        self._not_before = 0.0

    def over(self) -> int | None:
        """The worker's private memory in bytes if it is past the limit, else None."""
        limit = self._limit
        if _peak_rss() <= limit:  # about 1 µs: no job of this worker ever went near the limit
            return None
        now = time.monotonic()
        if now < self._not_before:
            return None
        bound = self._bound
        if bound is not None and bound() <= limit:
            return None
        used = self._measure()
        if used > limit:
            return used
        self._not_before = now + RECHECK_INTERVAL
        return None


def format_size(size: int) -> str:
    """``2_100_000_000`` -> ``"2.1 GB"`` (decimal units, one decimal)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


# -- out-of-memory kills (scheduler thread) -------------------------------------------------------------------


def oom_events_paths(
    proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup"
) -> list[str]:
    """The files that may count this process's cgroup's OOM kills, most specific first."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    paths: list[str] = []
    for line in lines:
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.lstrip("/")
        if controllers == "":  # cgroup v2 (the unified hierarchy)
            for mount in (root, os.path.join(root, "unified")):
                paths.append(os.path.join(mount, path, "memory.events"))
        elif "memory" in controllers.split(","):  # cgroup v1's memory controller
            paths.append(os.path.join(root, "memory", path, "memory.oom_control"))
            # Inside a container the hierarchy may be mounted at this cgroup itself.
            paths.append(os.path.join(root, "memory", "memory.oom_control"))
    return [p for p in dict.fromkeys(paths) if os.path.exists(p)]


def read_oom_kills(path: str) -> int | None:
    """The ``oom_kill`` count in a ``memory.events`` or ``memory.oom_control`` file, or None."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


def oom_kills(paths: list[str]) -> int | None:
    """The first count ``paths`` (see `oom_events_paths`) give, or None where none does (not Linux)."""
    for path in paths:
        count = read_oom_kills(path)
        if count is not None:
            return count
    return None


def oom_killed(exitcode: int | None, before: int | None, after: int | None) -> bool:
    """Whether a worker that ended with ``exitcode``, not killed by the pool, was killed by the OOM killer."""
    if exitcode != -signal.SIGKILL or before is None or after is None:
        return False
    return after > before
