"""The timeline as a PNG, drawn with matplotlib (the ``timeline`` extra).

matplotlib is imported when a PNG is asked for, never before, and only its object API is used (a `Figure`
and the Agg canvas, not ``pyplot``): drawing touches no global state and opens no window, so it is safe on
any thread and in a process that already uses matplotlib.

Runs on the thread that saves the timeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .look import (
    BACKUP_EDGE,
    BACKUP_TEXT,
    COLOURS,
    EXIT_COLOUR,
    EXIT_TEXT,
    LIFE_TEXT,
    RETRIED_TEXT,
    WORKER_LIFE,
    any_backup,
    any_retried,
    ended_badly,
    exit_text,
    legend,
    rows,
    short_name,
    startup,
    startup_text,
    summary,
    tick_label,
    ticks,
)
from .model import NO_WORKER

if TYPE_CHECKING:
    import os
    from typing import IO

    from .timeline import Timeline

__all__ = ["render_png"]

WIDTH_IN = 12.0  # inches; at DPI, 1200 pixels wide
DPI = 100
ROW_IN = 0.42  # inches per row of workers
BAR = 0.62  # a bar's height, in rows
FONT = 7.5  # points, the names inside bars
CHAR_PX = 5.9  # about how wide one character at FONT is (digits are the widest), to decide whether a name fits
AXES_WIDTH = 0.82  # of the figure's width: the row labels on the left, the utilisation on the right
MIN_PX = 1.5  # the narrowest bar of a success, in pixels
MIN_BAD_PX = 5.0  # the narrowest bar of an attempt that went wrong
NAMES_DRAWN = 600  # past this many attempts, names are left out: unreadable, and slow to draw


def _matplotlib() -> tuple[Any, Any, Any, Any]:
    """matplotlib's Figure, Agg canvas, Patch and Line2D, or an ImportError that says what to install."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ImportError(
            "a timeline's PNG is drawn with matplotlib, which is not installed: "
            "pip install 'taskpool-py[timeline]' (the HTML page needs nothing more)"
        ) from exc
    return Figure, FigureCanvasAgg, Patch, Line2D


def _span(start: float, end: float, least: float) -> tuple[float, float]:
    """``(start, width)`` of a bar at least ``least`` wide; a short one grows to the left, where its worker
    was alive, rather than past its end, which may be its worker's end."""
    if end - start >= least:
        return start, end - start
    return max(0.0, end - least), least


def render_png(
    timeline: Timeline, path: str | os.PathLike[str] | IO[bytes], title: str | None = None
) -> None:
    """Draw ``timeline`` into a PNG file at ``path`` (or into a binary file open for writing).

    Raises:
        ImportError: matplotlib is not installed.
    """
    figure_class, canvas_class, patch_class, line_class = _matplotlib()
    lanes = rows(timeline)
    row_of = {lane: i for i, lane in enumerate(lanes)}
    height = 1.9 + ROW_IN * len(lanes)
    figure = figure_class(figsize=(WIDTH_IN, height), dpi=DPI)
    canvas_class(figure)
    ax = figure.add_axes((0.1, 0.55 / height, AXES_WIDTH, (height - 1.55) / height))
    span = timeline.duration if timeline.duration > 0 else 1.0
    ax.set_xlim(0, span)
    ax.set_ylim(len(lanes) - 0.5, -0.5)  # the first lane on top

    ready = startup(timeline)
    if ready is not None:
        ax.text(
            ready / 2,
            (len(lanes) - 1) / 2,
            startup_text(ready),
            ha="center",
            va="center",
            fontsize=9,
            style="italic",
            color="#7a8594",
        )
    for worker in timeline.workers:
        ax.broken_barh(
            [(worker.start, worker.end - worker.start)],
            (row_of[worker.lane] - BAR / 2 - 0.1, BAR + 0.2),
            facecolors=WORKER_LIFE,
            zorder=1,
        )
    px_per_second = WIDTH_IN * DPI * AXES_WIDTH / span
    # A job of a millisecond still shows; an attempt that went wrong shows wider, so it is never missed.
    min_width = {o: (MIN_PX if o == "succeeded" else MIN_BAD_PX) / px_per_second for o in COLOURS}
    for outcome, colour in COLOURS.items():
        for retried, backup in ((False, False), (True, False), (False, True), (True, True)):
            chosen = [
                a
                for a in timeline.attempts
                if a.outcome == outcome and a.retried == retried and a.backup == backup
            ]
            for row in {row_of[a.lane] for a in chosen}:
                spans = [
                    _span(a.start, a.end, min_width[outcome])
                    for a in chosen
                    if row_of[a.lane] == row
                ]
                ax.broken_barh(
                    spans,
                    (row - BAR / 2, BAR),
                    facecolors=colour,
                    edgecolors=BACKUP_EDGE if backup else "white",
                    linewidth=1.0 if backup else 0.4,
                    linestyles="--" if backup else "-",
                    hatch="////" if retried else None,
                    zorder=2,
                )
    if len(timeline.attempts) <= NAMES_DRAWN:
        for a in timeline.attempts:
            fits = int((a.duration * px_per_second - 4) / CHAR_PX)
            if fits >= 4:
                name = short_name(a.name, fits)
                ax.text(
                    a.start + 2 / px_per_second,
                    row_of[a.lane],
                    name,
                    va="center",
                    ha="left",
                    fontsize=FONT,
                    color="white",
                    zorder=3,
                    clip_on=True,
                )
    for worker in timeline.workers:
        if exit_text(worker) is not None:
            ax.plot(  # on the top corner of the worker's band, clear of the bars
                [worker.end],
                [row_of[worker.lane] - BAR / 2 - 0.1],
                marker="X",
                markersize=8,
                color=EXIT_COLOUR,
                markeredgecolor="white",
                zorder=4,
                clip_on=False,
            )

    utilisation = timeline.utilisation()
    ax.set_yticks(range(len(lanes)), [timeline.lane_label(lane) for lane in lanes], fontsize=9)
    for lane in lanes:
        if lane != NO_WORKER:
            ax.text(
                1.008,
                row_of[lane],
                f"{utilisation[lane]:.0%} busy",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=9,
                color="#444",
            )
    step, marks = ticks(timeline.duration)
    ax.set_xticks(marks, [tick_label(t, step) for t in marks], fontsize=8)
    ax.grid(axis="x", color="#d7dce2", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    handles = [
        patch_class(facecolor=COLOURS[outcome], label=text) for outcome, text in legend(timeline)
    ]
    if any_retried(timeline):
        handles.append(
            patch_class(
                facecolor=COLOURS["failed"], edgecolor="white", hatch="////", label=RETRIED_TEXT
            )
        )
    if any_backup(timeline):
        handles.append(
            patch_class(facecolor="white", edgecolor=BACKUP_EDGE, linestyle="--", label=BACKUP_TEXT)
        )
    handles.append(patch_class(facecolor=WORKER_LIFE, label=LIFE_TEXT))
    if ended_badly(timeline):
        handles.append(
            line_class(
                [],
                [],
                marker="X",
                color=EXIT_COLOUR,
                linestyle="none",
                markersize=8,
                label=EXIT_TEXT,
            )
        )
    figure.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.1, 1 - 0.62 / height),
        ncol=min(len(handles), 7),
        frameon=False,
        fontsize=8.5,
        handlelength=1.6,
    )
    figure.text(
        0.1,
        1 - 0.12 / height,
        title or f"taskpool timeline ({timeline.backend} backend)",
        fontsize=13,
        weight="bold",
        va="top",
    )
    figure.text(0.1, 1 - 0.38 / height, summary(timeline), fontsize=9, color="#444", va="top")
    figure.savefig(path, format="png", dpi=DPI)
