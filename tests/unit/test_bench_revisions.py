"""The pure logic behind ``python -m benchmarks --at REV``: twin names, twins, the import check, ratios.

Nothing here runs git or starts a process; the end-to-end run is in tests/integration/test_benchmarks_quick.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks._contenders import CONTENDERS
from benchmarks._revisions import (
    Revision,
    base_name,
    commit_of,
    compare,
    foreign_import,
    taskpool_src,
    twin_name,
    twins,
)
from benchmarks._scenarios import Metric

OLD = Revision("main", "1a2b3c4", "an older commit", Path("/tmp/at/1a2b3c4/src"))
OLDER = Revision("v0.1", "5d6e7f8", "a tag", Path("/tmp/at/5d6e7f8/src"))
WORKING = Path("/work/tree/src")


def test_twin_names_round_trip() -> None:
    name = twin_name("taskpool-fork", "1a2b3c4")
    assert name == "taskpool-fork@1a2b3c4"
    assert base_name(name) == "taskpool-fork"
    assert commit_of(name) == "1a2b3c4"
    assert base_name("mp.Pool-fork") == "mp.Pool-fork"
    assert commit_of("mp.Pool-fork") == ""


def test_only_taskpool_contenders_get_twins_right_after_themselves() -> None:
    specs = [
        CONTENDERS["taskpool-forkserver"],
        CONTENDERS["mp.Pool-fork"],
        CONTENDERS["taskpool-fork"],
    ]
    names = [s.name for s in twins(specs, [OLD, OLDER])]
    assert names == [
        "taskpool-forkserver",
        "taskpool-forkserver@1a2b3c4",
        "taskpool-forkserver@5d6e7f8",
        "mp.Pool-fork",
        "taskpool-fork",
        "taskpool-fork@1a2b3c4",
        "taskpool-fork@5d6e7f8",
    ]
    twin = twins(specs[:1], [OLD])[1]
    assert twin.family == "taskpool"
    assert twin.scenarios == specs[0].scenarios
    assert "main" in twin.label
    assert "1a2b3c4" in twin.label


def test_no_revision_leaves_the_selection_alone() -> None:
    specs = list(CONTENDERS.values())
    assert twins(specs, []) == specs


def test_each_contender_imports_taskpool_from_its_own_tree() -> None:
    assert taskpool_src("taskpool-fork", [OLD, OLDER], WORKING) == WORKING
    assert taskpool_src("taskpool-fork@5d6e7f8", [OLD, OLDER], WORKING) == OLDER.src
    with pytest.raises(ValueError, match="9999999"):
        taskpool_src("taskpool-fork@9999999", [OLD], WORKING)


def test_a_sample_from_another_tree_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "taskpool").mkdir(parents=True)
    assert foreign_import(str(src / "taskpool" / "__init__.py"), src) is None
    assert foreign_import(None, src) is None
    why = foreign_import(str(WORKING / "taskpool" / "__init__.py"), src)
    assert why is not None
    assert str(WORKING) in why
    assert str(src) in why


def _entry(contender: str, variant: str, medians: dict[str, float], status: str = "ok") -> Any:
    return {
        "contender": contender,
        "variant": variant,
        "status": status,
        "metrics": {name: {"median": value} for name, value in medians.items()},
    }


def test_compare_gives_the_working_tree_its_ratio_against_each_twin() -> None:
    us = Metric("us", "µs", higher_is_better=False)
    rate = Metric("items_per_s", "items/s", higher_is_better=True)
    entries: dict[str, dict[str, Any]] = {
        "taskpool-fork": _entry("taskpool-fork", "", {"us": 100.0, "items_per_s": 300.0}),
        "taskpool-fork apply_async": _entry("taskpool-fork", "apply_async", {"us": 50.0}),
        "taskpool-fork@1a2b3c4": _entry(
            "taskpool-fork@1a2b3c4", "", {"us": 200.0, "items_per_s": 100.0}
        ),
        "taskpool-fork@1a2b3c4 apply_async": _entry(
            "taskpool-fork@1a2b3c4", "apply_async", {"us": 40.0}
        ),
        "taskpool-fork@5d6e7f8": _entry("taskpool-fork@5d6e7f8", "", {}, status="failed"),
        "mp.Pool-fork": _entry("mp.Pool-fork", "", {"us": 80.0, "items_per_s": 90.0}),
    }
    compare(entries, [us, rate], ["1a2b3c4", "5d6e7f8"])

    plain = entries["taskpool-fork"]
    # Half the time and three times the rate: better on both, whatever the unit's direction.
    assert plain["vs"] == {"1a2b3c4": pytest.approx(2.0)}
    assert plain["metrics"]["us"]["vs"] == {"1a2b3c4": pytest.approx(2.0)}
    assert plain["metrics"]["items_per_s"]["vs"] == {"1a2b3c4": pytest.approx(3.0)}
    # A variant is compared with the same variant of the twin.
    assert entries["taskpool-fork apply_async"]["vs"] == {"1a2b3c4": pytest.approx(0.8)}
    # Twins and other libraries get no comparison of their own.
    for label in ("taskpool-fork@1a2b3c4", "taskpool-fork@5d6e7f8", "mp.Pool-fork"):
        assert "vs" not in entries[label]
