"""What the HTML page and the PNG share: colours, the legend, the time axis and the words of the picture.

Pure functions, run on whichever thread draws a timeline.
"""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING

from .model import NO_WORKER

if TYPE_CHECKING:
    from .model import Outcome, TimelineAttempt, TimelineWorker
    from .timeline import Timeline

__all__ = [
    "COLOURS",
    "LEGEND",
    "any_backup",
    "any_retried",
    "describe_attempt",
    "ended_badly",
    "exit_text",
    "legend",
    "rows",
    "short_name",
    "startup",
    "startup_text",
    "summary",
    "tick_label",
    "ticks",
    "worker_text",
]

# Colours that stay apart for the common kinds of colour blindness (after Okabe and Ito); a retried attempt
# keeps the colour of how it ended and is hatched on top.
COLOURS: dict[Outcome, str] = {
    "succeeded": "#4daf7c",
    "failed": "#d55e00",
    "crashed": "#6a3d9a",
    "timed out": "#e6a100",
    "cancelled": "#8c8c8c",
    "running": "#56b4e9",
}

#: ``(outcome, what the legend says)``, in the legend's order.
LEGEND: tuple[tuple[Outcome, str], ...] = (
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("crashed", "crashed (worker died)"),
    ("timed out", "timed out"),
    ("cancelled", "stopped"),
    ("running", "running"),
)

WORKER_LIFE = "#e6eaf0"  # the band behind a row while its worker is alive
EXIT_COLOUR = "#c0392b"  # the cross where a worker ended badly
RETRIED_TEXT = "retried (hatched)"
BACKUP_TEXT = "backup copy (dashed outline)"
BACKUP_EDGE = "#111111"  # the outline of a backup copy's bar
LIFE_TEXT = "worker alive"
EXIT_TEXT = "worker killed or exit code ≠ 0"


def rows(timeline: Timeline) -> list[int]:
    """The lanes drawn, top to bottom: every worker's lane, then `NO_WORKER` if an attempt ran on none."""
    drawn = list(range(timeline.lanes))
    if any(a.lane == NO_WORKER for a in timeline.attempts):
        drawn.append(NO_WORKER)
    return drawn


def legend(timeline: Timeline) -> list[tuple[Outcome, str]]:
    """The legend's entries for the outcomes ``timeline`` has (succeeded always, so that it never is empty)."""
    seen = {a.outcome for a in timeline.attempts} | {"succeeded"}
    return [(outcome, text) for outcome, text in LEGEND if outcome in seen]


def any_retried(timeline: Timeline) -> bool:
    """Whether some attempt was retried (the legend explains the hatching then)."""
    return any(a.retried for a in timeline.attempts)


def any_backup(timeline: Timeline) -> bool:
    """Whether some bar is a backup copy (the legend explains the dashed outline then)."""
    return any(a.backup for a in timeline.attempts)


def ended_badly(timeline: Timeline) -> bool:
    """Whether some worker ended by a signal or a non-zero exit code (the legend explains the cross then)."""
    return any(exit_text(w) is not None for w in timeline.workers)


def startup(timeline: Timeline) -> float | None:
    """Seconds the pool took to bring its first worker up, when that is a noticeable part of the picture
    (a tenth of it or more): the empty stretch at its start is then labelled, not left to puzzle over."""
    if not timeline.workers or timeline.duration <= 0:
        return None
    ready = min(w.start for w in timeline.workers)
    return ready if ready >= 0.1 * timeline.duration else None


def startup_text(seconds: float) -> str:
    """The label of the stretch before the first worker was up."""
    return f"starting workers ({seconds:.1f} s)"


def short_name(name: str, fits: int) -> str:
    """``name`` in at most ``fits`` characters. What tells jobs of one function apart is the part in brackets
    (``collatz_steps[40000..59999]``, as ``taskpool run`` names them), so that part is kept first."""
    if len(name) <= fits:
        return name
    if name.endswith("]") and "[" in name:
        part = name[name.rindex("[") :]
        room = fits - len(part) - 1
        if room >= 1:
            return name[:room] + "…" + part
        if len(part) <= fits:
            return part
        name = part  # its start still tells the job apart: "[100000..1…"
    return name[: fits - 1] + "…"


def ticks(duration: float, most: int = 10) -> tuple[float, list[float]]:
    """A round step (1, 2 or 5 times a power of ten) and the ticks from 0 to ``duration`` at that step."""
    if duration <= 0:
        return 1.0, [0.0]
    rough = duration / most
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    count = int(duration / step + 1e-9)
    return step, [i * step for i in range(count + 1)]


def tick_label(seconds: float, step: float) -> str:
    """``seconds`` with as many decimals as ``step`` needs, and the unit."""
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{seconds:.{decimals}f} s"


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def worker_text(worker: TimelineWorker | TimelineAttempt) -> str:
    """How a worker is named in a tooltip: its id and its pid where known."""
    if worker.worker is None:
        return "no worker"
    if isinstance(worker.worker, str):
        return worker.worker
    return f"worker {worker.worker}" + (f", pid {worker.pid}" if worker.pid is not None else "")


def exit_text(worker: TimelineWorker) -> str | None:
    """Why a worker ended, if it ended badly (a signal or a non-zero exit code); None otherwise."""
    code = worker.exitcode
    if not worker.exited or code is None or code == 0:
        return None
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def describe_attempt(attempt: TimelineAttempt) -> str:
    """The lines a tooltip shows for ``attempt``."""
    how = attempt.outcome + (", retried" if attempt.retried else "")
    copy = ", backup copy" if attempt.backup else ""
    lines = [
        f"{attempt.name} (job {attempt.job_id}, attempt {attempt.attempt}{copy})",
        f"{how} on {worker_text(attempt)}",
        f"{_seconds(attempt.start)} to {_seconds(attempt.end)} ({_seconds(attempt.duration)})",
    ]
    if attempt.error:
        lines.append(attempt.error)
    return "\n".join(lines)


def summary(timeline: Timeline) -> str:
    """One line: what ran, on what, for how long, what went wrong, and how busy the workers were."""
    counts = timeline.counts()
    jobs, attempts, retried = counts["jobs"], counts["attempts"], counts["retried"]
    ends = ", ".join(f"{counts[o]} {o}" for o, _ in LEGEND if counts.get(o))
    parts = [f"{jobs} job{'s' * (jobs != 1)}" + (f": {ends}" if ends else "")]
    backups = counts["backups"]
    parts.append(
        f"{attempts} attempt{'s' * (attempts != 1)}"
        + (f", {retried} retried" if retried else "")
        + (f", {backups} backup cop{'ies' if backups != 1 else 'y'}" if backups else "")
    )
    parts.append(f"{timeline.size} worker{'s' * (timeline.size != 1)} ({timeline.backend})")
    parts.append(_seconds(timeline.duration))
    parts.append(f"{timeline.overall_utilisation:.0%} busy")
    return " · ".join(parts)
