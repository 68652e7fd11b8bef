"""`limit_threads`, in this process: which variables it sets, and when it calls threadpoolctl."""

from __future__ import annotations

import os
import sys

import pytest

from taskpool._runtime import threadlimit
from taskpool._runtime.threadlimit import NATIVE_MODULES, THREAD_VARIABLES, limit_threads


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, set[str | None]]]:
    """The calls `limit_threads` makes to limit libraries loaded already; no variable set, none loaded."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in NATIVE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    made: list[tuple[int, set[str | None]]] = []
    monkeypatch.setattr(
        threadlimit, "_limit_loaded", lambda limit, kinds: made.append((limit, kinds))
    )
    return made


def test_it_sets_every_variable_and_leaves_unloaded_libraries_to_them(
    calls: list[tuple[int, set[str | None]]],
) -> None:
    assert limit_threads(3) == list(THREAD_VARIABLES)
    assert all(os.environ[name] == "3" for name in THREAD_VARIABLES)
    assert calls == []  # nothing loaded: threadpoolctl is not even imported


def test_a_loaded_library_is_limited_at_run_time(
    calls: list[tuple[int, set[str | None]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "numpy", sys)
    limit_threads(2)
    assert calls == [(2, {"blas", "openmp"})]


def test_a_kind_the_user_sized_is_theirs(
    calls: list[tuple[int, set[str | None]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    monkeypatch.setitem(sys.modules, "numpy", sys)
    chosen = limit_threads(1)
    assert "MKL_NUM_THREADS" not in chosen
    assert os.environ["MKL_NUM_THREADS"] == "4"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert calls == [(1, {"openmp"})]
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    calls.clear()
    limit_threads(1)
    assert calls == []
