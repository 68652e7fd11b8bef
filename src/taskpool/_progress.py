"""Progress bars (tqdm) drawn in the parent, advanced by job completions on the pool's event thread.

A bar counts input items, not jobs, so a chunked `map` advances by each chunk's size. By default a bar is
drawn only when stderr is a terminal (tqdm's ``disable=None``), so logs of batch jobs stay clean; pass
``progress={"disable": False}`` to draw it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tqdm import tqdm

from ._future import JobFuture

__all__ = ["make_bar", "track"]


def make_bar(progress: bool | str | Mapping[str, Any], total: int | None) -> tqdm[Any]:
    """Make a bar from a ``progress=`` argument (caller's thread)."""
    kwargs: dict[str, Any] = {"total": total, "disable": None, "unit": "item", "dynamic_ncols": True}
    if isinstance(progress, str):
        kwargs["desc"] = progress
    elif isinstance(progress, Mapping):
        kwargs.update(progress)
    return tqdm(**kwargs)


def track(futures: Iterable[JobFuture[Any]], progress: bool | str | Mapping[str, Any], total: int) -> tqdm[Any]:
    """A bar that advances as each future finishes, by the number of items its job covers."""
    bar = make_bar(progress, total)
    for future in futures:
        future.add_done_callback(lambda f: bar.update(f._items))
    return bar
