"""The joblib backend ``"taskpool"``: plain, nested and generator loops, crashes, timeouts, options, and
scikit-learn on it. Two workers; every blocking call ends by a job's timeout or the test's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

joblib = pytest.importorskip("joblib")
sklearn = pytest.importorskip("sklearn")

from joblib import Parallel, delayed  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

import taskpool.joblib  # noqa: E402
from taskpool import JobTimeoutError, Retry, WorkerCrashedError  # noqa: E402

from ._joblib_jobs import die_at, die_once, inner_sum, inner_taskpool_sum, square, stall  # noqa: E402

SQUARES = [i * i for i in range(10)]


def test_a_plain_loop(start_method: str) -> None:
    with joblib.parallel_config(backend="taskpool", n_jobs=2, start_method=start_method):
        assert Parallel()(delayed(square)(i) for i in range(10)) == SQUARES
    assert Parallel(n_jobs=2, backend="taskpool")(delayed(square)(i) for i in range(10)) == SQUARES


def test_nested_loops_run_in_the_worker_without_a_process_pool() -> None:
    expected = [sum(j * j for j in range(i)) for i in range(4)]
    with joblib.parallel_config(backend="taskpool", n_jobs=2):
        assert Parallel()(delayed(inner_sum)(i) for i in range(4)) == expected
        assert Parallel()(delayed(inner_taskpool_sum)(i) for i in range(4)) == expected


def test_return_as_generator() -> None:
    with joblib.parallel_config(backend="taskpool", n_jobs=2):
        results = Parallel(return_as="generator")(delayed(square)(i) for i in range(10))
        assert not isinstance(results, list)
        assert list(results) == SQUARES


def test_a_crash_fails_its_batch_and_the_same_backend_goes_on() -> None:
    backend = taskpool.joblib.TaskpoolBackend()
    with joblib.parallel_config(backend=backend, n_jobs=2):
        with pytest.raises(WorkerCrashedError):
            # The stalled batch is stopped when the crash aborts the call, not waited for.
            Parallel(batch_size=1)(delayed(f)(*a) for f, a in [(stall, (30.0,)), (die_at, (3, 3))])
        assert Parallel()(delayed(square)(i) for i in range(10)) == SQUARES


def test_a_retry_given_to_the_backend_reruns_a_crashed_batch(tmp_path: Path) -> None:
    marker = str(tmp_path / "crashed")
    with joblib.parallel_config(
        backend="taskpool", n_jobs=2, retry=Retry(attempts=2, on_crash=True)
    ):
        assert Parallel(batch_size=1)(delayed(die_once)(i, marker) for i in range(3)) == [0, 1, 4]


def test_the_backend_timeout_ends_a_batch_past_it() -> None:
    with joblib.parallel_config(backend="taskpool", n_jobs=2, timeout=0.5):
        with pytest.raises(JobTimeoutError):
            Parallel(batch_size=1)(delayed(stall)(s) for s in (0.0, 30.0))
        assert Parallel()(delayed(square)(i) for i in range(10)) == SQUARES


def test_unknown_options_are_refused_with_the_backends_name() -> None:
    with pytest.raises(TypeError, match=r"'taskpool' joblib backend.*bogus"):
        joblib.parallel_config(backend="taskpool", bogus=1)
    with pytest.raises(TypeError, match=r"'taskpool' joblib backend.*bogus"):
        Parallel(n_jobs=2, backend="taskpool", bogus=1)(delayed(square)(i) for i in range(2))
    with pytest.raises(ValueError, match="timeout"):
        joblib.parallel_config(backend="taskpool", timeout=-1)


def test_importing_taskpool_registers_nothing() -> None:
    code = (
        "import joblib.parallel, taskpool; taskpool.TaskPool; "
        "assert 'taskpool' not in joblib.parallel.BACKENDS; "
        "import taskpool.joblib; assert 'taskpool' in joblib.parallel.BACKENDS"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("version", ["1.2.0", "2.0.0", "0.17", "unknown"])
def test_a_joblib_version_outside_the_supported_range_is_refused(version: str) -> None:
    with pytest.raises(ImportError, match=r"joblib>=1\.3,<2"):
        taskpool.joblib._check_joblib_version(version)


def _cv_scores(backend: str) -> list[float]:
    X, y = load_iris(return_X_y=True)
    with joblib.parallel_config(backend=backend, n_jobs=2):
        scores: Any = cross_val_score(DecisionTreeClassifier(random_state=0), X, y, cv=3)
    return [float(s) for s in scores]


def test_cross_val_score_matches_loky() -> None:
    from joblib.externals.loky import get_reusable_executor

    try:
        expected = _cv_scores("loky")
    finally:
        get_reusable_executor().shutdown(wait=True)  # loky keeps its workers otherwise
    assert _cv_scores("taskpool") == expected


def test_a_small_grid_search() -> None:
    X, y = load_iris(return_X_y=True)
    grid = {"max_depth": [1, 2, 3]}
    search = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3)
    search.fit(X, y)
    with joblib.parallel_config(backend="taskpool", n_jobs=2):
        on_taskpool = GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3).fit(X, y)
    assert on_taskpool.best_params_ == search.best_params_
    assert list(on_taskpool.cv_results_["mean_test_score"]) == list(
        search.cv_results_["mean_test_score"]
    )
