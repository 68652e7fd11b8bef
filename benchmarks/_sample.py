"""What every scenario function shares: the row it reports, the pool's lifetime, and its checks.

Runs in a child runner (`benchmarks._run`) only, like the scenario functions that use it.
"""

from __future__ import annotations

import contextlib
import importlib
import resource
import sys
from typing import TYPE_CHECKING, Any

from benchmarks._adapter import Adapter, Skip, Unsupported
from benchmarks._adapters import Taskpool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

__all__ = ["Params", "Row", "opened", "peak_rss_mb", "require", "row", "taskpool_only"]

Row = dict[str, Any]
Params = dict[str, Any]


def row(metrics: dict[str, float], n: int, variant: str = "", note: str = "") -> Row:
    """One reported row: a contender's metrics (or one variant's), the size it ran, and a note."""
    return {"variant": variant, "metrics": metrics, "n": n, "note": note}


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """The peak resident set size of this process (or of its waited-for children), in MiB."""
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss * scale / 2**20


@contextlib.contextmanager
def opened(adapter: Adapter, warm: bool = True) -> Iterator[Adapter]:
    """Start the pool (and warm it up unless told not to); shut it down however the block ends."""
    adapter.open()
    try:
        if warm:
            adapter.warm()
        yield adapter
    finally:
        adapter.close()


def taskpool_only(adapter: Adapter) -> Taskpool:
    """The adapter as a taskpool one; other libraries have no such feature to time."""
    if not isinstance(adapter, Taskpool):
        raise Unsupported("taskpool only")
    return adapter


def require(module: str) -> ModuleType:
    """Import a module a scenario needs (numpy), or skip the sample with what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"{module} is not installed (pip install -e '.[bench]')") from exc
