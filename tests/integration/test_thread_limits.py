"""Workers keep the thread pools of BLAS and OpenMP libraries to their share of the CPUs, under every start
method: through the environment for a library loaded later, and through threadpoolctl for one loaded already
(preloaded in the template, or inherited from the parent under fork).
"""

from __future__ import annotations

import os

import pytest

from taskpool import TaskPool
from taskpool._pool.cpus import usable_cpus

from .. import _template_jobs as tj

pytest.importorskip("numpy")
pytest.importorskip("threadpoolctl")

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 30.0
VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@pytest.fixture(autouse=True)
def _no_thread_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _settings(**options: object) -> dict[str, dict[str, object]]:
    with TaskPool(2, **options) as pool:  # type: ignore[arg-type]
        settings: dict[str, dict[str, object]] = pool.submit(tj.thread_settings).result(
            timeout=TIMEOUT
        )
        return settings


@pytest.mark.parametrize(
    "options",
    [
        {"start_method": "spawn"},  # numpy imported in the job: the environment does it
        {
            "start_method": "fork"
        },  # numpy loaded in this process before the fork: threadpoolctl does it
        {"preload": ["numpy"]},  # loaded in the template: threadpoolctl does it
    ],
    ids=["spawn", "fork", "preloaded"],
)
def test_each_worker_gets_its_share_of_the_cpus_by_default(options: dict[str, object]) -> None:
    import numpy  # noqa: F401 - under fork, the workers inherit it loaded

    share = max(1, usable_cpus() // 2)
    settings = _settings(**options)
    assert settings["env"] == dict.fromkeys(VARIABLES, str(share))
    assert settings["pools"]["blas"] == share


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_an_int_sets_the_limit(method: str) -> None:
    settings = _settings(start_method=method, limit_threads=1)
    assert settings["env"]["OMP_NUM_THREADS"] == "1"
    assert settings["pools"]["blas"] == 1


def test_false_leaves_the_libraries_alone() -> None:
    settings = _settings(start_method="spawn", limit_threads=False)
    assert settings["env"] == dict.fromkeys(VARIABLES)


def test_a_variable_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    settings = _settings(start_method="spawn", limit_threads=1)
    assert settings["env"]["OPENBLAS_NUM_THREADS"] == "2"
    assert settings["env"]["OMP_NUM_THREADS"] == "1"
    assert settings["pools"]["blas"] == min(2, os.cpu_count() or 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_a_limit_that_is_not_a_whole_number_is_refused(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="limit_threads"):
        TaskPool(1, limit_threads=bad)  # type: ignore[arg-type]
