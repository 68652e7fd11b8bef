"""The ``backup_after`` option: its checks (before any job runs), `Median`, and the median of durations."""

from __future__ import annotations

import math
import pickle

import pytest
from tests import jobs

from taskpool import JobOptions, Median, TaskPool, task
from taskpool._core.backup import MEDIAN_WINDOW, Durations, check_backup_after


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan])
def test_a_backup_delay_that_is_not_positive_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        check_backup_after(value)


@pytest.mark.parametrize("value", [True, "3x median", [3.0], b"1"])
def test_a_backup_delay_that_is_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="backup_after"):
        check_backup_after(value)  # type: ignore[arg-type]


def test_the_string_form_points_to_median() -> None:
    with pytest.raises(TypeError, match=r"taskpool\.Median\(3\.0\)"):
        check_backup_after("3x median")  # type: ignore[arg-type]


def test_valid_backup_delays() -> None:
    assert check_backup_after(None) is None
    assert check_backup_after(2) == 2.0
    assert check_backup_after(math.inf) is None
    assert check_backup_after(Median(3)) == Median(3.0)


@pytest.mark.parametrize("factor", [0, -1.0, math.nan, math.inf])
def test_median_refuses_a_factor_out_of_range(factor: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        Median(factor)


def test_median_refuses_bad_types_and_sample_counts() -> None:
    with pytest.raises(TypeError):
        Median("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_samples"):
        Median(3.0, min_samples=0)


def test_median_is_an_immutable_value() -> None:
    rule = Median(2.5, min_samples=3)
    assert rule == Median(2.5, min_samples=3) != Median(2.5)
    assert hash(rule) == hash(Median(2.5, min_samples=3))
    assert repr(rule) == "Median(2.5, min_samples=3)"
    assert repr(Median(3)) == "Median(3.0)"
    assert pickle.loads(pickle.dumps(rule)) == rule
    with pytest.raises(AttributeError):
        rule.factor = 1.0


def test_job_options_carry_backup_after() -> None:
    opts = JobOptions(timeout=5.0).merge(backup_after=1.5)
    assert opts.backup_after == 1.5
    assert opts.timeout == 5.0
    assert opts.timed
    assert not JobOptions().timed
    assert JobOptions(timeout=1.0).timed
    assert opts != JobOptions(timeout=5.0)
    assert opts == JobOptions(timeout=5.0, backup_after=1.5)
    assert "backup_after=1.5" in repr(opts)
    assert opts.merge(backup_after=None).backup_after is None
    with pytest.raises(ValueError, match="backup_after"):
        JobOptions().merge(backup_after=0)


def test_durations_median_and_delay() -> None:
    durations = Durations()
    assert durations.median() is None
    assert durations.delay(Median(3.0, min_samples=1)) is None
    for d in (0.3, 0.1, 0.2):
        durations.add(d)
    assert durations.median() == pytest.approx(0.2)
    assert durations.delay(Median(3.0, min_samples=4)) is None  # not enough samples yet
    durations.add(10.0)  # one straggler moves a median little
    assert durations.median() == pytest.approx(0.25)
    assert durations.delay(Median(2.0, min_samples=4)) == pytest.approx(0.5)


def test_durations_keep_a_window_of_recent_jobs() -> None:
    durations = Durations()
    for _ in range(MEDIAN_WINDOW):
        durations.add(1.0)
    for _ in range(MEDIAN_WINDOW // 2 + 1):
        durations.add(5.0)
    assert len(durations) == MEDIAN_WINDOW
    assert durations.median() == 5.0


def test_durations_of_zero_give_a_floored_delay() -> None:
    durations = Durations()
    durations.add(0.0)
    delay = durations.delay(Median(3.0, min_samples=1))
    assert delay is not None
    assert delay > 0


def test_bad_backup_after_is_refused_before_any_job_runs() -> None:
    with TaskPool(1, backend="inline") as pool:
        with pytest.raises(ValueError, match="backup_after"):
            pool.options(backup_after=0)
        with pytest.raises(TypeError, match="Median"):
            pool.options(backup_after="3x median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backup_after"):
        task(backup_after=-1.0)
    with pytest.raises(ValueError, match="backup_after"):
        task(jobs.square).options(backup_after=-1.0)


def test_the_thread_backend_refuses_backups() -> None:
    with TaskPool(2, backend="thread") as pool:
        with pytest.raises(ValueError, match="thread backend cannot run backup copies"):
            pool.options(backup_after=1.0)
        with pytest.raises(ValueError, match="backup copies"):
            task(backup_after=Median(3.0))(jobs.square).submit(3)


def test_the_inline_backend_ignores_backups() -> None:
    with TaskPool(backend="inline") as pool:
        assert pool.options(backup_after=0.001).submit(jobs.square, 4).result(timeout=5) == 16


def test_which_backends_take_backups() -> None:
    from taskpool._backends.dask.backend import DaskBackend
    from taskpool._backends.inline import InlineBackend
    from taskpool._backends.process.backend import ProcessBackend
    from taskpool._backends.thread import ThreadBackend

    assert ProcessBackend.supports_backup
    assert InlineBackend.supports_backup  # and ignores it
    assert not ThreadBackend.supports_backup
    assert not DaskBackend.supports_backup
