"""Writes the results of a run: latest.json, latest.md and PNG charts (harness parent only).

The JSON is the source of truth; the markdown tables and the charts are views of it. Charts need
matplotlib (the `bench` extra) and use the Agg backend, so they render without a display.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from benchmarks._contenders import CONTENDERS
from benchmarks._revisions import base_name, commit_of, twin_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["write_reports"]

_TASKPOOL_COLOR = "#1f77b4"
_TWIN_COLOR = "#9ecae1"  # taskpool at another revision: the same hue, lighter
_OTHER_COLOR = "#b0b0b0"
_BASELINE_COLOR = "#ff7f0e"


def write_reports(results: dict[str, Any], out: Path, charts: bool = True) -> list[Path]:
    """Write every report for `results` into `out` and return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "latest.json"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    md_path = out / "latest.md"
    md_path.write_text(markdown(results))
    paths = [json_path, md_path]
    if charts:
        paths += write_charts(results, out)
    return paths


def fmt(value: float | None) -> str:
    """A number with about three significant digits, thousands separated; "-" for none."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def _order(entry: dict[str, Any]) -> tuple[int, str, bool, str]:
    """Sort key: the registry's contender order, the working tree before its twins at other revisions,
    each contender's plain row before its variants."""
    names = list(CONTENDERS)
    base = base_name(entry["contender"])
    rank = names.index(base) if base in names else len(names)
    return (rank, commit_of(entry["contender"]), bool(entry["variant"]), entry["variant"])


def _ok_entries(section: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ok = [(k, e) for k, e in section["results"].items() if e["status"] == "ok"]
    return sorted(ok, key=lambda item: _order(item[1]))


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['cpu_count']} CPUs ({meta['cpu_model'] or 'unknown model'}), "
        f"{meta['memory_gb']} GB RAM, {meta['platform']}",
        f"- Python {meta['python']} ({meta['implementation']}), {meta['workers']} workers per pool",
        f"- Load average (1, 5, 15 min) at start: {meta.get('loadavg_start')}, at end: "
        f"{meta.get('loadavg_end')}; total {meta.get('total_seconds')} s",
        f"- Command: `{meta['command']}` ({meta['repeats']} repeat(s); medians reported)",
        f"- Ratios: {meta['ratio_meaning']}; baseline `{meta['baseline']}` unless a section says "
        "otherwise.",
        "",
    ]
    mp_sections = {
        name: s for name, s in results["scenarios"].items() if s["baseline"] == meta["baseline"]
    }
    if mp_sections:
        lines += _summary(mp_sections)
    for revision in meta.get("revisions", []):
        lines += _versus(results["scenarios"], revision, meta.get("working_tree") or {})
    for name, section in results["scenarios"].items():
        lines += _section(name, section)
    return "\n".join(lines) + "\n"


def _summary(sections: dict[str, dict[str, Any]]) -> list[str]:
    keys: dict[str, tuple[int, str, bool, str]] = {}
    for section in sections.values():
        for label, entry in _ok_entries(section):
            keys[label] = _order(entry)
    labels = sorted(keys, key=keys.__getitem__)
    header = "| contender | " + " | ".join(
        f"{name} ({s['metrics'][0]['unit']})" for name, s in sections.items()
    )
    lines = [
        "## Summary (median, ratio vs baseline)",
        "",
        header + " |",
        "|---" * (len(sections) + 1) + "|",
    ]
    for label in labels:
        cells = []
        for section in sections.values():
            entry = section["results"].get(label)
            if entry is None or entry["status"] != "ok":
                cells.append("")
            else:
                cells.append(f"{fmt(entry['median'])} ({fmt_ratio(entry['ratio'])})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _versus(
    sections: dict[str, dict[str, Any]], revision: dict[str, str], working: dict[str, Any]
) -> list[str]:
    """The working tree's taskpool against the same contender at `revision`, scenario by scenario."""
    commit = revision["commit"]
    rows: dict[str, dict[str, str]] = {}
    keys: dict[str, tuple[int, str, bool, str]] = {}
    columns: dict[str, str] = {}
    for name, section in sections.items():
        ok = {(e["contender"], e["variant"]): e for _, e in _ok_entries(section)}
        for (contender, variant), entry in ok.items():
            ratio = entry.get("vs", {}).get(commit)
            twin = ok.get((twin_name(contender, commit), variant))
            if ratio is None or twin is None:
                continue
            label = f"{contender} {variant}" if variant else contender
            keys[label] = _order(entry)
            columns[name] = f"{name} ({section['metrics'][0]['unit']})"
            cell = f"{fmt(entry['median'])} / {fmt(twin['median'])} ({fmt_ratio(ratio)})"
            rows.setdefault(label, {})[name] = cell
    if not rows:
        return []
    here = f"HEAD {working['commit']}" if working.get("commit") else "HEAD"
    if working.get("uncommitted_changes"):
        here += " with uncommitted changes"
    lines = [
        f"## Working tree against `{revision['rev']}` ({commit})",
        "",
        f"The working tree ({here}) against `{revision['rev']}` ({commit}: {revision['subject']}), "
        "same contender and same run: median of the working tree / median at the revision, and the "
        "ratio (above 1: the working tree is better).",
        "",
        "| contender | " + " | ".join(columns.values()) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for label in sorted(rows, key=keys.__getitem__):
        cells = [rows[label].get(name, "") for name in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _section(name: str, section: dict[str, Any]) -> list[str]:
    metrics = section["metrics"]
    lines = [f"## {name}: {section['title']}", "", section["description"], ""]
    params = ", ".join(f"{k}={v}" for k, v in section["params"].items())
    if params:
        lines += [f"Parameters: {params}.", ""]
    base = section["baseline"]
    lines.append(f"Ratio against: {base or 'none'}.")
    lines.append("")
    head = " | ".join(
        f"{m['name']} ({m['unit']}, {'↑' if m['higher_is_better'] else '↓'})" for m in metrics
    )
    lines.append(f"| contender | {head} | ratio | samples | note |")
    lines.append("|---" * (len(metrics) + 4) + "|")
    for label, entry in _ok_entries(section):
        cells = [fmt(entry["metrics"].get(m["name"], {}).get("median")) for m in metrics]
        ratios = [fmt_ratio(entry["metrics"].get(m["name"], {}).get("ratio")) for m in metrics]
        samples = ", ".join(fmt(v) for v in entry["samples"])
        lines.append(
            f"| {label} | {' | '.join(cells)} | {' / '.join(ratios)} | {samples} | {entry['reason']} |"
        )
    others = [(label, e) for label, e in section["results"].items() if e["status"] != "ok"]
    if others or section["not_applicable"]:
        lines.append("")
        for label, entry in others:
            lines.append(f"- {label}: {entry['status']}: {entry['reason']}")
        for label, why in section["not_applicable"].items():
            lines.append(f"- {label}: not run: {why}")
    return [*lines, ""]


def _color(label: str, baseline: str | None) -> str:
    if label == baseline:
        return _BASELINE_COLOR
    if not label.startswith("taskpool"):
        return _OTHER_COLOR
    return _TWIN_COLOR if commit_of(label.split(" ", 1)[0]) else _TASKPOOL_COLOR


def write_charts(results: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per scenario (absolute medians, ratio in the labels) and a grid of ratios, summary.png."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no charts (pip install -e '.[bench]')")
        return []
    baseline = results["meta"]["baseline"]
    paths = []
    for name, section in results["scenarios"].items():
        entries = _ok_entries(section)
        if not entries:
            continue
        metrics = section["metrics"]
        fig, axes = plt.subplots(
            1, len(metrics), figsize=(6.5 * len(metrics), 0.45 * len(entries) + 1.6), squeeze=False
        )
        for ax, metric in zip(axes[0], metrics, strict=True):
            rows = [
                (label, e["metrics"][metric["name"]])
                for label, e in entries
                if metric["name"] in e["metrics"]
            ]
            labels = [label for label, _ in rows]
            values = [m["median"] for _, m in rows]
            errors = [
                [m["median"] - min(m["samples"]) for _, m in rows],
                [max(m["samples"]) - m["median"] for _, m in rows],
            ]
            colors = [_color(label, baseline) for label in labels]
            ax.barh(labels, values, xerr=errors, color=colors, capsize=2)
            ax.invert_yaxis()
            arrow = "higher is better" if metric["higher_is_better"] else "lower is better"
            # Dask's milliseconds next to microseconds would flatten every other bar: go logarithmic.
            if min(values) > 0 and max(values) / min(values) > 20:
                ax.set_xscale("log")
                arrow += "; log scale"
            ax.set_xlabel(f"{metric['unit']} ({arrow})")
            for y, (_, m) in enumerate(rows):
                ratio = f"  {fmt_ratio(m['ratio'])}" if m["ratio"] is not None else ""
                # Past the whisker's end, so that the label and the whisker do not overlap.
                end = max(m["samples"])
                ax.text(end, y, f" {fmt(m['median'])}{ratio}", va="center", fontsize=8)
            ax.margins(x=0.3)
        fig.suptitle(f"{name}: {section['title']} (median; whiskers: min-max)", fontsize=11)
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.4 / fig.get_figheight()))
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    summary = _summary_chart(results, out, plt)
    if summary is not None:
        paths.append(summary)
    return paths


def _summary_chart(results: dict[str, Any], out: Path, plt: Any) -> Path | None:
    from matplotlib.ticker import NullFormatter  # matplotlib is loaded already: the caller checked

    baseline = results["meta"]["baseline"]
    panels = []
    for name, section in results["scenarios"].items():
        if section["baseline"] != baseline:
            continue
        for metric in section["metrics"]:
            rows = [
                (label, e["metrics"][metric["name"]]["ratio"])
                for label, e in _ok_entries(section)
                if e["metrics"].get(metric["name"], {}).get("ratio") is not None
            ]
            if rows:
                panels.append((f"{name}: {metric['name']} ({metric['unit']})", rows))
    if not panels:
        return None
    cols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / cols)
    height = max(2.5, max(len(rows) for _, rows in panels) * 0.32 + 1.2)
    fig, axes = plt.subplots(nrows, cols, figsize=(7 * cols, height * nrows), squeeze=False)
    for ax, (title, rows) in zip(axes.flat, panels, strict=False):
        labels = [label for label, _ in rows]
        ratios = [r for _, r in rows]
        ax.barh(labels, ratios, color=[_color(label, baseline) for label in labels])
        ax.invert_yaxis()
        ax.set_xscale("log")
        # Minor-tick labels crowd into each other over a narrow range of ratios: label decades only.
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        for y, r in enumerate(ratios):
            ax.text(r, y, f" {r:.2f}", va="center", fontsize=7)
        ax.margins(x=0.25)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Performance relative to {baseline} (>1 is better; log scale; median of "
        f"{results['meta']['repeats']})",
        fontsize=12,
    )
    # Keep the top 0.5 inch for the title, which tight_layout would otherwise let the panels cover.
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.5 / (height * nrows)))
    path = out / "summary.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
