"""The benchmark harness end to end: a quick run of a few cheap contenders and scenarios, and one that also
runs taskpool as it is at another git revision (``--at``).

The test process only starts ``python -m benchmarks`` and reads what it writes; the harness starts its own
child runners and pools. No timing is asserted (the machine may be busy): only that the run finishes in
bounded time and that the results have the documented shape.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = ("mp.Pool-fork", "PPE-fork", "taskpool-forkserver")
SCENARIOS = ("tiny", "startup")
#: Contenders that must produce numbers; taskpool's own row may be failed or skipped while the core is
#: changing, and the harness must still report it.
MUST_RUN = ("mp.Pool-fork", "PPE-fork")


def _run_quick(out: Path, *extra: str, only: str = "") -> subprocess.CompletedProcess[str]:
    only = only or ",".join((*CONTENDERS, *SCENARIOS))
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--only", only, "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, timeout=30, check=False
    )
    return proc.returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quick_run_writes_results(tmp_path: Path) -> None:
    proc = _run_quick(tmp_path)
    assert proc.returncode == 0, proc.stderr

    results: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    meta = results["meta"]
    for key in ("date", "python", "platform", "cpu_count", "repeats", "baseline", "versions"):
        assert key in meta
    assert meta["quick"] is True
    assert meta["repeats"] == 1
    assert list(results["scenarios"]) == list(SCENARIOS)

    for name, section in results["scenarios"].items():
        assert section["metrics"], name
        entries = section["results"]
        assert {e["contender"] for e in entries.values()} == set(CONTENDERS)
        for label, entry in entries.items():
            assert entry["status"] in ("ok", "skipped", "failed"), label
            if entry["status"] != "ok":
                assert entry["reason"], label
                continue
            assert len(entry["samples"]) == 1
            assert entry["median"] == entry["samples"][0]
            assert entry["unit"] == section["metrics"][0]["unit"]
        for contender in MUST_RUN:
            entry = entries[contender]
            assert entry["status"] == "ok", entry["reason"]
            assert entry["ratio"] is not None
        assert entries["mp.Pool-fork"]["ratio"] == pytest.approx(1.0)

    assert (tmp_path / "latest.md").read_text().startswith("# Benchmark results")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "summary.png").stat().st_size > 0
        for name in SCENARIOS:
            assert (tmp_path / f"{name}.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quick_run_at_another_revision(tmp_path: Path) -> None:
    if not _in_git_checkout():
        pytest.skip("not a git checkout")
    proc = _run_quick(
        tmp_path, "--at", "HEAD", "--no-charts", only="taskpool-fork,mp.Pool-fork,latency"
    )
    assert proc.returncode == 0, proc.stderr

    results: dict[str, Any] = json.loads((tmp_path / "latest.json").read_text())
    [revision] = results["meta"]["revisions"]
    assert revision["rev"] == "HEAD"
    commit = revision["commit"]
    # The exported tree is gone once the run is over.
    assert not Path(revision["src"]).exists()
    entries = results["scenarios"]["latency"]["results"]
    twin = entries[f"taskpool-fork@{commit}"]
    mine = entries["taskpool-fork"]
    assert twin["status"] in ("ok", "skipped", "failed"), twin
    if twin["status"] == "ok":
        assert Path(twin["taskpool_file"]).is_relative_to(revision["src"])
    if mine["status"] == "ok":
        assert Path(mine["taskpool_file"]).is_relative_to(ROOT / "src")
    if twin["status"] == "ok" and mine["status"] == "ok":
        assert mine["vs"][commit] is not None
        assert f"Working tree against `HEAD` ({commit})" in (tmp_path / "latest.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quick_run_of_the_array_crash_and_straggler_scenarios(tmp_path: Path) -> None:
    only = "mp.Pool-fork,PPE-fork,taskpool-fork,numpy_args,numpy_results,crash,stragglers"
    proc = _run_quick(tmp_path, "--no-charts", only=only)
    assert proc.returncode == 0, proc.stderr
    sections = json.loads((tmp_path / "latest.json").read_text())["scenarios"]

    has_numpy = importlib.util.find_spec("numpy") is not None
    for name in ("numpy_args", "numpy_results"):
        entry = sections[name]["results"]["mp.Pool-fork"]
        if has_numpy:
            assert entry["status"] == "ok", entry["reason"]
            assert entry["metrics"]["mb_per_s"]["median"] > 0
        else:
            assert entry["status"] == "skipped"
            assert "numpy" in entry["reason"]

    crash = sections["crash"]
    assert "mp.Pool-fork" in crash["not_applicable"]
    entry = crash["results"]["PPE-fork"]
    assert entry["status"] == "ok", entry["reason"]
    # The executor is rebuilt after the crash: its new worker runs a job only after the failure is seen.
    assert entry["metrics"]["replace_ms"]["median"] > 0

    stragglers = sections["stragglers"]["results"]
    assert stragglers["mp.Pool-fork"]["status"] == "ok", stragglers["mp.Pool-fork"]["reason"]
    # 20 jobs of 20 ms on 2 workers, two of which stall for 200 ms: no pool can finish sooner.
    assert stragglers["mp.Pool-fork"]["median"] >= 0.2
    plain = stragglers["taskpool-fork"]
    if plain["status"] == "ok":
        # Either the run with backup copies is there, or the plain row says why it is not.
        assert "taskpool-fork +backup" in stragglers or "+backup not run" in plain["reason"]
