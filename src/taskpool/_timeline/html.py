"""The timeline as one self-contained HTML page: inline SVG, CSS and a few lines of script, nothing fetched.

Each attempt is an SVG group of class ``attempt`` and its outcome (``succeeded``, ``failed``, ``crashed``,
``timed-out``, ``cancelled``, ``running``; ``retried`` besides, for an attempt that was retried), with
``data-job`` set to the job's id and a ``<title>`` (the browser's tooltip) that names the job and says how it
ended. Hovering an attempt highlights every attempt of the same job. Below the chart, a table lists the
attempts that did not succeed.

Runs on the thread that saves the timeline.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

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
    describe_attempt,
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
    worker_text,
)
from .model import NO_WORKER

if TYPE_CHECKING:
    from .model import TimelineAttempt, TimelineWorker
    from .timeline import Timeline

__all__ = ["render_html"]

WIDTH = 1200  # the SVG's coordinate width; the page scales it to the window
LEFT = 130  # the row labels
RIGHT = 64  # the utilisation of each row
TOP = 28  # the time axis
ROW = 30
BAR = 20
CHAR = 6.8  # about how wide one character of the 11px labels is (digits are the widest), to decide whether a name fits
MIN_WIDTH = 1.5  # the narrowest bar of a success, so that a job of a millisecond still shows
MIN_BAD_WIDTH = 5.0  # the narrowest bar of an attempt that went wrong, so that it is never missed
TABLE_ROWS = 500  # the most attempts the table of failures lists

_CSS = (
    """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}
.summary{color:#444;margin:0 0 12px}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:0 0 10px;font-size:13px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:22px;height:12px;border-radius:2px}
svg{width:100%;height:auto;font:11px system-ui,-apple-system,"Segoe UI",sans-serif}
.grid line{stroke:#d7dce2;stroke-width:1}
.grid text,.util{fill:#555}
.lane-label{fill:#222;font-size:12px}
.life{fill:LIFE}
.startup{fill:#7a8594;font-style:italic;font-size:12px}
.attempt rect.fill{stroke:#fff;stroke-width:.5}
.attempt text{fill:#fff;pointer-events:none}
.attempt.hl rect.fill{stroke:#111;stroke-width:2}
.attempt.backup rect.fill{stroke:EDGE;stroke-width:1.2;stroke-dasharray:4 2}
.exit{fill:EXIT;font-size:14px;font-weight:bold}
table{border-collapse:collapse;margin-top:18px;font-size:13px}
th,td{border-bottom:1px solid #e3e6ea;padding:3px 10px;text-align:left;vertical-align:top;white-space:nowrap}
td.err{font-family:ui-monospace,monospace;white-space:pre-wrap;min-width:30em}
""".replace("LIFE", WORKER_LIFE)
    .replace("EXIT", EXIT_COLOUR)
    .replace("EDGE", BACKUP_EDGE)
)

# Hovering an attempt highlights all the attempts of its job (its retries, on whichever worker).
_SCRIPT = """
(function(){var svg=document.querySelector('svg.timeline');if(!svg)return;
function set(job,on){svg.querySelectorAll('.attempt[data-job="'+job+'"]').forEach(function(g){
g.classList.toggle('hl',on)})}
svg.addEventListener('mouseover',function(e){var g=e.target.closest('.attempt');if(g)set(g.dataset.job,true)});
svg.addEventListener('mouseout',function(e){var g=e.target.closest('.attempt');if(g)set(g.dataset.job,false)});
})();
"""


def css_class(outcome: str) -> str:
    """The CSS class of an outcome (``timed out`` → ``timed-out``)."""
    return outcome.replace(" ", "-")


def render_html(timeline: Timeline, title: str | None = None) -> str:
    """The page: title, summary, legend, the chart, and the table of attempts that did not succeed."""
    title = title or f"taskpool timeline ({timeline.backend} backend)"
    colours = "".join(
        f".attempt.{css_class(o)} rect.fill,.legend i.{css_class(o)}{{fill:{c};background:{c}}}"
        for o, c in COLOURS.items()
    )
    items = [
        f'<span><i class="{css_class(o)}"></i>{escape(text)}</span>' for o, text in legend(timeline)
    ]
    if any_retried(timeline):
        items.append(
            '<span><i style="background:repeating-linear-gradient(45deg,#d55e00 0 3px,#eaae8f 3px 6px)">'
            f"</i>{escape(RETRIED_TEXT)}</span>"
        )
    if any_backup(timeline):
        items.append(
            f'<span><i style="border:1.5px dashed {BACKUP_EDGE};box-sizing:border-box"></i>'
            f"{escape(BACKUP_TEXT)}</span>"
        )
    items.append(f'<span><i style="background:{WORKER_LIFE}"></i>{escape(LIFE_TEXT)}</span>')
    if ended_badly(timeline):
        items.append(f'<span><b style="color:{EXIT_COLOUR}">✕</b>{escape(EXIT_TEXT)}</span>')
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{colours}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="summary">{escape(summary(timeline))}</p>\n'
        f'<div class="legend">{"".join(items)}</div>\n'
        f"{_svg(timeline)}\n{_table(timeline.attempts)}\n"
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def _svg(timeline: Timeline) -> str:
    lanes = rows(timeline)
    height = TOP + ROW * len(lanes) + 8
    span = timeline.duration if timeline.duration > 0 else 1.0
    scale = (WIDTH - LEFT - RIGHT) / span

    def x(seconds: float) -> float:
        return LEFT + seconds * scale

    y_of = {lane: TOP + i * ROW for i, lane in enumerate(lanes)}
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{escape(summary(timeline))}">',
        '<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" fill-opacity="0.5"/>'
        "</pattern></defs>",
        '<g class="grid">',
    ]
    step, marks = ticks(timeline.duration)
    for t in marks:
        out.append(
            f'<line x1="{x(t):.1f}" y1="{TOP - 6}" x2="{x(t):.1f}" y2="{height - 8}"/>'
            f'<text x="{x(t):.1f}" y="{TOP - 10}" text-anchor="middle">{tick_label(t, step)}</text>'
        )
    out.append("</g>")
    utilisation = timeline.utilisation()
    for lane in lanes:
        y = y_of[lane]
        label = escape(timeline.lane_label(lane))
        out.append(
            f'<text class="lane-label" x="{LEFT - 8}" y="{y + ROW / 2 + 4}" text-anchor="end">{label}</text>'
        )
        if lane != NO_WORKER:
            share = utilisation[lane]
            out.append(
                f'<text class="util" x="{WIDTH - RIGHT + 8}" y="{y + ROW / 2 + 4}">'
                f"<title>busy {share:.1%} of the run</title>{share:.0%} busy</text>"
            )
    ready = startup(timeline)
    if ready is not None:
        out.append(
            f'<text class="startup" x="{x(ready / 2):.1f}" y="{TOP + ROW * len(lanes) / 2 + 4:.1f}" '
            f'text-anchor="middle">{escape(startup_text(ready))}</text>'
        )
    for worker in timeline.workers:
        out.append(_life(worker, x(worker.start), x(worker.end), y_of[worker.lane]))
    for attempt in timeline.attempts:
        out.append(_attempt(attempt, x(attempt.start), x(attempt.end), y_of[attempt.lane]))
    for worker in timeline.workers:
        why = exit_text(worker)
        if why is not None:
            top = y_of[worker.lane] + (ROW - BAR) / 2 + 2  # on the top corner of the worker's band
            out.append(
                f'<text class="exit" x="{x(worker.end):.1f}" y="{top}" text-anchor="middle">'
                f"<title>{escape(worker_text(worker))} {escape(why)}</title>✕</text>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _life(worker: TimelineWorker, x0: float, x1: float, y: float) -> str:
    """The band behind a row while one worker is alive, with its pid at its start where it fits."""
    top = y + (ROW - BAR) / 2 - 3
    tip = f"{worker_text(worker)}: {worker.start:.3f} s to {worker.end:.3f} s, {worker.utilisation:.0%} busy"
    why = exit_text(worker)
    if why is not None:
        tip += f"; {why}"
    band = (
        f'<g class="life"><rect class="life" x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 1):.1f}" '
        f'height="{BAR + 6}" rx="3"><title>{escape(tip)}</title></rect></g>'
    )
    return band


def _attempt(attempt: TimelineAttempt, x0: float, x1: float, y: float) -> str:
    least = MIN_WIDTH if attempt.outcome == "succeeded" else MIN_BAD_WIDTH
    if x1 - x0 < least:  # grown to the left, where its worker was alive, not past its end
        x0 = max(LEFT, x1 - least)
    width = max(x1 - x0, least)
    top = y + (ROW - BAR) / 2
    classes = f"attempt {css_class(attempt.outcome)}" + (" retried" if attempt.retried else "")
    classes += " backup" if attempt.backup else ""
    parts = [
        f'<g class="{classes}" data-job="{attempt.job_id}">',
        f"<title>{escape(describe_attempt(attempt))}</title>",
        f'<rect class="fill" x="{x0:.1f}" y="{top:.1f}" width="{width:.1f}" height="{BAR}" rx="2"/>',
    ]
    if attempt.retried:
        parts.append(
            f'<rect x="{x0:.1f}" y="{top:.1f}" width="{width:.1f}" height="{BAR}" fill="url(#hatch)"/>'
        )
    fits = int((width - 6) / CHAR)
    if fits >= 4:
        name = short_name(attempt.name, fits)
        parts.append(f'<text x="{x0 + 3:.1f}" y="{top + BAR / 2 + 4:.1f}">{escape(name)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _table(attempts: tuple[TimelineAttempt, ...]) -> str:
    """The attempts that did not succeed, one row each (the first `TABLE_ROWS`)."""
    bad = [a for a in attempts if a.outcome != "succeeded"]
    if not bad:
        return "<p>Every attempt succeeded.</p>"
    lines = [
        f'<tr class="{css_class(a.outcome)}{" retried" * a.retried}" data-job="{a.job_id}">'
        f"<td>{escape(a.name)}</td><td>{a.job_id}</td><td>{a.attempt}</td>"
        f"<td>{escape(a.outcome)}{', retried' * a.retried}{', backup copy' * a.backup}</td>"
        f"<td>{escape(worker_text(a))}</td>"
        f"<td>{a.start:.3f} s</td><td>{a.duration:.3f} s</td>"
        f'<td class="err">{escape(a.error or "")}</td></tr>'
        for a in bad[:TABLE_ROWS]
    ]
    more = f"<p>… and {len(bad) - TABLE_ROWS} more.</p>" if len(bad) > TABLE_ROWS else ""
    return (
        "<h2>Attempts that did not succeed</h2><table><thead><tr><th>job</th><th>id</th><th>attempt</th>"
        "<th>outcome</th><th>worker</th><th>start</th><th>duration</th><th>error</th></tr></thead>"
        f"<tbody>{''.join(lines)}</tbody></table>{more}"
    )
