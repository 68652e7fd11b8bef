"""The backlog's estimate and its waits, without processes."""

from __future__ import annotations

import logging
import threading

from taskpool._core.backlog import Backlog, estimate
from taskpool._core.reports import ReportKind


def test_the_estimate_sizes_text_and_bytes_by_report_kind_and_never_raises() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "m" * 1000, None, None)
    base = estimate([(ReportKind.STARTED, None, 1, 2, None, None)])
    assert estimate([(ReportKind.OUTPUT, None, 1, 2, ("stdout", "t" * 5000), None)]) >= base + 5000
    assert estimate([(ReportKind.LOG, None, 1, 2, record, None)]) >= base + 1000
    assert estimate([(ReportKind.SUCCEEDED, None, 1, 2, b"b" * 7000, None)]) >= base + 7000
    # A result that happens to be a tuple, or anything else, costs the fixed cost only.
    assert estimate([(ReportKind.SUCCEEDED, None, 1, 2, (3, 4), None)]) == base
    assert estimate([(ReportKind.SUCCEEDED, None, 1, 2, object(), None)]) == base


def test_producers_wait_above_the_bound_until_the_backlog_is_under_half_of_it() -> None:
    backlog = Backlog(high=1000)
    backlog.add(1500)
    assert backlog.over()
    woken = threading.Event()
    backlog.when_below(woken.set)
    assert not backlog.wait_below(timeout=0.01)
    backlog.done(800)  # 700 left: under the bound, still over its half
    assert not woken.is_set()
    backlog.done(300)  # 400 left: under half
    assert woken.is_set()
    assert backlog.wait_below(timeout=0)
    assert backlog.peak == 1500
