"""The harness parent: plans the run, starts one child runner per sample, collects and reports.

Everything here runs in the process started by ``python -m benchmarks``. It never imports a pool library
(only `benchmarks._jobs` for the CPU calibration), so every contender starts from the same clean state: each
sample is a fresh ``python -m benchmarks._run`` child in a session of its own, run under a wall-clock timeout,
and killed with its whole process group when it hangs or when it leaves workers behind.

Order: for each scenario, for each repeat, every selected contender once (the order rotates between repeats so
that no contender always runs first, when the machine is coldest, or last). Medians over repeats are
reported, and ratios against `BASELINE` are taken from the same run.

With ``--at REV``, every selected taskpool contender also runs as it is at REV (`benchmarks._revisions`),
interleaved with the rest, and the working tree's rows get their ratio against those twins too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import _jobs, _revisions
from benchmarks._contenders import CONTENDERS, ContenderSpec
from benchmarks._machine import loadavg, machine_info
from benchmarks._report import write_reports
from benchmarks._scenarios import BASELINE, SCENARIOS, Scenario

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
#: The optional extra that installs a module, where it is not `bench`.
_EXTRAS = {"ray": "bench-ray"}


@dataclass
class Outcome:
    """Everything collected for one (scenario, contender) pair across repeats."""

    status: str = "ok"
    reason: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run taskpool against other pool libraries, each sample in a fresh child process.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, 1 repeat, and no Ray unless --only names it (one to two minutes)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated contender names, families (taskpool, mp.Pool, PPE) and/or scenario "
        f"names. Contenders: {', '.join(CONTENDERS)}. Scenarios: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="samples per pair (default 3, 1 quick)"
    )
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="REV",
        help="also run every selected taskpool contender with taskpool as it is at git revision REV "
        "(branch, tag or commit; repeatable), named NAME@COMMIT, and report the working tree's "
        "ratio against it",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    return parser.parse_args(argv)


def select(only: str, quick: bool = False) -> tuple[list[ContenderSpec], list[Scenario]]:
    """Resolve `--only` tokens; with no contender (or no scenario) token, all of them are selected.

    With `quick`, a contender that is slow to start (``quick=False``) runs only when a token names it.
    """
    contenders: list[str] = []
    scenarios: list[str] = []
    for raw in only.split(","):
        token = raw.strip().lower()
        if not token:
            continue
        hits = [c.name for c in CONTENDERS.values() if token in (c.name.lower(), c.family.lower())]
        if hits:
            contenders += hits
        elif token in SCENARIOS:
            scenarios.append(token)
        elif _revisions.SEP in token:
            raise SystemExit(
                f"--only: {raw.strip()!r}: name the contender alone; --at REV adds the twin at REV "
                "of every taskpool contender selected"
            )
        else:
            names = ", ".join([*CONTENDERS, *SCENARIOS])
            raise SystemExit(f"--only: unknown name {raw.strip()!r}; known: {names}")
    chosen = [
        c
        for c in CONTENDERS.values()
        if c.name in contenders or (not contenders and (c.quick or not quick))
    ]
    picked = [s for s in SCENARIOS.values() if not scenarios or s.name in scenarios]
    return chosen, picked


def missing_requirement(spec: ContenderSpec | Scenario) -> str | None:
    """Why a contender or a scenario cannot run here (a module it needs is missing), or None."""
    for module in spec.requires:
        if importlib.util.find_spec(module) is None:
            extra = _EXTRAS.get(module, "bench")
            return f"{module} is not installed (pip install -e '.[{extra}]')"
    return None


def calibrate(params: dict[str, Any]) -> None:
    """Pick the CPU loop size for ~job_ms serially, once, in this process; every child gets the same."""
    params["loop"] = _jobs.calibrate_cpu_loop(params["job_ms"] / 1e3)
    _say(f"cpu: {params['loop']} loop steps per job")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_child(
    spec: ContenderSpec, scenario: Scenario, params: dict[str, Any], timeout: float, src: Path
) -> tuple[dict[str, Any], float]:
    """Run one sample in a fresh child, with taskpool from `src`; return its outcome and wall time."""
    env = dict(os.environ)
    # The child, the workers it starts (forkserver, spawn, loky, Dask nannies) and the CLI must all find
    # `benchmarks` and the `src/taskpool` asked for, ahead of any installed one.
    paths = [str(ROOT), str(src)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # Installed packages come with their bytecode compiled; a tree run without it would time the compiler
    # on every start (a fresh child per sample), for taskpool's many small modules more than for others.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="taskpool-bench-") as tmp:
        result_file = Path(tmp, "result.json")
        log_file = Path(tmp, "output.log")
        cmd = [
            sys.executable,
            "-m",
            "benchmarks._run",
            "--contender",
            _revisions.base_name(spec.name),
            "--scenario",
            scenario.name,
            "--params",
            json.dumps(params),
            "--result-file",
            str(result_file),
        ]
        t0 = time.perf_counter()
        with log_file.open("w") as log:
            # A new session makes the child a process-group leader: one killpg reaches every worker it
            # started, even ones that outlive it.
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                return {"status": "failed", "reason": f"timeout after {timeout:.0f} s"}, timeout
            finally:
                _kill_group(proc.pid)
        elapsed = time.perf_counter() - t0
        if result_file.exists():
            outcome: dict[str, Any] = json.loads(result_file.read_text())
            return outcome, elapsed
        tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
        reason = f"child exited with {proc.returncode} and no result: {' | '.join(tail)}"
        return {"status": "failed", "reason": reason}, elapsed


def _format(value: float, unit: str) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M {unit}"
    if value >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}"


def run_scenario(
    scenario: Scenario,
    contenders: list[ContenderSpec],
    quick: bool,
    repeats: int,
    revisions: Sequence[_revisions.Revision] = (),
) -> dict[str, Any]:
    """Run every repeat of one scenario and aggregate it into its section of latest.json."""
    base_params = scenario.params(quick)
    if scenario.name == "cpu":
        calibrate(base_params)
    outcomes: dict[str, Outcome] = {}
    not_applicable: dict[str, str] = {}
    runnable = []
    for spec in contenders:
        if scenario.name not in spec.scenarios:
            if scenario.name in spec.notes:
                not_applicable[spec.name] = spec.notes[scenario.name]
            continue
        missing = missing_requirement(scenario) or missing_requirement(spec)
        if missing:
            outcomes[spec.name] = Outcome("skipped", missing)
            continue
        runnable.append(spec)
    for rep in range(repeats):
        shift = rep % len(runnable) if runnable else 0
        for spec in runnable[shift:] + runnable[:shift]:
            outcome = outcomes.setdefault(spec.name, Outcome())
            if outcome.status != "ok":
                continue  # a skip, an error or a timeout would only repeat itself
            params = dict(base_params)
            scale = spec.scale.get(scenario.name, 1.0)
            for key in ("jobs", "items", "calls"):
                if key in params and scale != 1.0:
                    params[key] = max(1, int(params[key] * scale))
            src = _revisions.taskpool_src(spec.name, revisions, ROOT / "src")
            timeout = scenario.timeout(quick) + spec.extra_timeout_s
            result, seconds = run_child(spec, scenario, params, timeout, src)
            outcome.seconds.append(round(seconds, 3))
            tag = f"[{scenario.name} {rep + 1}/{repeats}] {spec.name}"
            if spec.family == "taskpool":
                # A twin that ran the working tree's taskpool (or the other way round) would compare
                # a tree with itself and look like a clean result: such a sample must not count.
                foreign = _revisions.foreign_import(result.get("taskpool_file"), src)
                if foreign:
                    result = {"status": "failed", "reason": foreign}
            if result["status"] != "ok":
                outcome.status, outcome.reason = result["status"], result["reason"]
                _say(f"{tag}: {result['status']}: {result['reason']}")
                continue
            for row in result["rows"]:
                row["child_peak_rss_mb"] = result.get("peak_rss_mb")
                row["taskpool_file"] = result.get("taskpool_file")
            outcome.rows.extend(result["rows"])
            primary = scenario.primary
            shown = ", ".join(
                _format(r["metrics"][primary.name], primary.unit)
                + (f" ({r['variant']})" if r["variant"] else "")
                for r in result["rows"]
            )
            _say(f"{tag}: {shown}  [{seconds:.1f} s]")
    commits = [r.commit for r in revisions]
    return aggregate(scenario, base_params, outcomes, not_applicable, commits)


def _label(contender: str, variant: str) -> str:
    return f"{contender} {variant}" if variant else contender


def aggregate(
    scenario: Scenario,
    params: dict[str, Any],
    outcomes: dict[str, Outcome],
    not_applicable: dict[str, str],
    commits: Sequence[str] = (),
) -> dict[str, Any]:
    entries: dict[str, dict[str, Any]] = {}
    for name, outcome in outcomes.items():
        by_variant: dict[str, list[dict[str, Any]]] = {}
        for row in outcome.rows:
            by_variant.setdefault(row["variant"], []).append(row)
        if outcome.status != "ok" or not by_variant:
            entries[name] = {
                "contender": name,
                "variant": "",
                "status": outcome.status,
                "reason": outcome.reason,
                "samples": [],
                "median": None,
                "unit": scenario.primary.unit,
                "ratio": None,
                "metrics": {},
            }
            continue
        for variant, rows in by_variant.items():
            metrics: dict[str, dict[str, Any]] = {}
            for metric_name in rows[0]["metrics"]:
                samples = [r["metrics"][metric_name] for r in rows]
                spec = next((m for m in scenario.metrics if m.name == metric_name), None)
                metrics[metric_name] = {
                    "unit": spec.unit if spec else "",
                    "higher_is_better": spec.higher_is_better if spec else None,
                    "samples": samples,
                    "median": statistics.median(samples),
                    "ratio": None,
                }
            primary = metrics[scenario.primary.name]
            notes = sorted({r["note"] for r in rows if r["note"]})
            entries[_label(name, variant)] = {
                "contender": name,
                "variant": variant,
                "status": "ok",
                # A row after a failed repeat keeps its earlier samples but says what went wrong later.
                "reason": "; ".join([*notes, *([outcome.reason] if outcome.reason else [])]),
                "n": rows[0]["n"],
                "samples": primary["samples"],
                "median": primary["median"],
                "unit": primary["unit"],
                "ratio": None,
                "metrics": metrics,
                "child_seconds": outcome.seconds,
                "taskpool_file": rows[0].get("taskpool_file"),
            }
    baseline_label = None
    for entry in entries.values():
        if scenario.baseline == "mp":
            base = entries.get(BASELINE)
        elif scenario.baseline == "self":
            base = entries.get(entry["contender"])
        else:
            base = None
        if base is None or base["status"] != "ok" or entry["status"] != "ok":
            continue
        baseline_label = BASELINE if scenario.baseline == "mp" else "plain variant"
        for metric in scenario.metrics:
            mine, theirs = entry["metrics"].get(metric.name), base["metrics"].get(metric.name)
            if mine and theirs:
                mine["ratio"] = metric.ratio(mine["median"], theirs["median"])
        entry["ratio"] = entry["metrics"][scenario.primary.name]["ratio"]
    _revisions.compare(entries, scenario.metrics, commits)
    return {
        "title": scenario.title,
        "description": scenario.description,
        "params": params,
        "metrics": [
            {"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better}
            for m in scenario.metrics
        ],
        "baseline": baseline_label,
        "results": entries,
        "not_applicable": not_applicable,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    selected, scenarios = select(args.only, args.quick)
    meta = machine_info(args.quick, repeats)
    meta["command"] = " ".join(
        ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]
    )
    results: dict[str, Any] = {"meta": meta, "scenarios": {}}
    # The exported trees live until every sample has run, and go away however the run ends.
    with _revisions.exported(ROOT, args.at) as revisions:
        contenders = _revisions.twins(selected, revisions)
        if revisions:
            meta["working_tree"] = _revisions.working_tree(ROOT)
            meta["revisions"] = [r.describe() for r in revisions]
        _say(
            f"{len(contenders)} contenders x {len(scenarios)} scenarios, {repeats} repeat(s), "
            f"{meta['cpu_count']} CPUs, Python {meta['python']}"
        )
        t0 = time.perf_counter()
        for scenario in scenarios:
            results["scenarios"][scenario.name] = run_scenario(
                scenario, contenders, args.quick, repeats, revisions
            )
        meta["total_seconds"] = round(time.perf_counter() - t0, 1)
    meta["loadavg_end"] = loadavg()
    paths = write_reports(results, args.out, charts=not args.no_charts)
    _say(f"done in {meta['total_seconds']} s; wrote {', '.join(str(p) for p in paths)}")
    return 0
