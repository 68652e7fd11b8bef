"""The names the code looks installed taskpool up by are the distribution's name in pyproject.toml.

Starts no process.
"""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks._machine import _VERSIONED

from taskpool._backends.dask import cluster as dask_cluster

ROOT = Path(__file__).resolve().parents[2]


def _distribution_name() -> str:
    # The first `name = ` at the start of a line is [project]'s (the build-system table has none); a regular
    # expression, because tomllib is not in Python 3.10's stdlib.
    match = re.search(r'^name = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_the_dask_backend_compares_versions_of_the_projects_distribution() -> None:
    assert _distribution_name() == dask_cluster.DISTRIBUTION


def test_benchmark_results_record_the_version_of_the_projects_distribution() -> None:
    assert _distribution_name() in _VERSIONED
