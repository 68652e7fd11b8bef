"""What the results record about the machine and the run, so that a reader can judge the numbers.

Runs in the harness parent only; it reads system files and package metadata and imports no pool library.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from benchmarks._adapter import WORKERS
from benchmarks._scenarios import BASELINE

__all__ = ["loadavg", "machine_info"]

#: Distributions whose versions go into the results, so that numbers can be traced to what produced them.
_VERSIONED = (
    "taskpool-py",
    "loky",
    "joblib",
    "pebble",
    "mpire",
    "billiard",
    "distributed",
    "dask",
    "ray",
    "numpy",
)


def machine_info(quick: bool, repeats: int) -> dict[str, Any]:
    """The machine, the library versions and the run's settings: the ``meta`` section of the results."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory_gb = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    versions: dict[str, str | None] = {}
    for dist in _VERSIONED:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": memory_gb,
        "workers": WORKERS,
        # Others' load skews every number on a shared machine: record it so that a reader can judge.
        "loadavg_start": loadavg(),
        "quick": quick,
        "repeats": repeats,
        "baseline": BASELINE,
        "ratio_meaning": "relative performance vs the baseline in the same run; > 1 means better "
        "(faster, more throughput, or less memory), whatever the unit's direction",
        "versions": versions,
    }


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
