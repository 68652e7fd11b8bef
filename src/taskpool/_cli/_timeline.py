"""``taskpool run --timeline PAGE.html``: a picture of the run, as an HTML page and a PNG beside it.

`check_timeline` runs before anything starts and applies the rules that protect OUTPUT to the picture's files
too: an existing file is replaced only with ``--overwrite``, and neither may be the input or OUTPUT. The PNG
needs matplotlib; without it the command says so before the run and writes the page alone. `write_timeline`
runs once the pool is done (finished, failed, or interrupted: a picture of an interrupted run shows where it
stopped), and creates the files exclusively unless ``--overwrite`` was given, so that a file that appeared
during the run is not replaced either.

Runs in the main thread of ``taskpool run``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ._status import PROG, UsageError

if TYPE_CHECKING:
    import argparse

    from .. import TaskPool

__all__ = ["TimelineFiles", "check_timeline", "write_timeline"]


@dataclass(frozen=True)
class TimelineFiles:
    """Where the picture goes, and how."""

    page: Path
    png: Path | None  # None: matplotlib is missing
    overwrite: bool
    title: str


def _same(a: Path, b: str | None) -> bool:
    if b is None or b == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the names the OS would open
        return a.resolve() == Path(b).resolve()


def check_timeline(args: argparse.Namespace, stderr: IO[str] | None) -> TimelineFiles | None:
    """The files ``--timeline`` asks for, checked before the run (main thread).

    Raises:
        UsageError: a file is not allowed: it exists (without ``--overwrite``), it is the input or OUTPUT,
            or it is not an ``.html`` page.
    """
    if args.timeline is None:
        return None
    page = Path(args.timeline)
    if page.suffix.lower() not in (".html", ".htm"):
        raise UsageError(
            f"--timeline {args.timeline}: name the HTML page (e.g. run.html); the PNG is written beside "
            "it with the suffix .png"
        )
    png: Path | None = page.with_suffix(".png")
    for path in (page, png):
        assert path is not None
        if _same(path, args.output) or _same(path, args.input):
            raise UsageError(f"--timeline would write {path}, which is the input or OUTPUT")
        if path.exists() and not args.overwrite:
            raise UsageError(
                f"the timeline file {path} exists: pass --overwrite to replace it, "
                "or give --timeline another name"
            )
    if importlib.util.find_spec("matplotlib") is None:
        png = None
        if stderr is not None:
            print(
                f"{PROG} run: --timeline writes {page} only: the PNG needs matplotlib "
                "(pip install 'taskpool-py[timeline]')",
                file=stderr,
            )
    return TimelineFiles(page, png, args.overwrite, f"taskpool run {args.function}")


def write_timeline(pool: TaskPool, files: TimelineFiles) -> str | None:
    """Write the picture of ``pool``'s run; returns why it could not be written, or None (main thread)."""
    from .._timeline.html import render_html
    from .._timeline.png import render_png

    timeline = pool.timeline()
    mode = "w" if files.overwrite else "x"  # "x": never replace a file that appeared during the run
    try:
        with open(files.page, mode, encoding="utf-8") as page:
            page.write(render_html(timeline, files.title))
        if files.png is not None:
            with open(files.png, mode + "b") as png:
                render_png(timeline, png, files.title)
    except OSError as exc:
        return f"cannot write the timeline {exc.filename or files.page}: {exc.strerror or exc}"
    return None
