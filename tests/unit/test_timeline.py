"""Timelines built from hand-made events, and the pages and pictures drawn from them (no process started)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from tests._timeline_events import T0, ended, started, worker
from tests._timeline_page import PNG_SIGNATURE, parse

from taskpool import Event, JobTimeoutError, Timeline, WorkerCrashedError
from taskpool._timeline.look import short_name


def a_run() -> list[Event]:
    """Two workers: successes, a failure, a crash retried on a replacement worker, a timeout."""
    return [
        worker("worker_started", 0.0, 1),
        worker("worker_started", 0.0, 2),
        started(0.0, 1, 1),
        started(0.0, 2, 2),
        ended("job_succeeded", 1.0, 1, 1),
        started(1.0, 3, 1),
        ended("job_failed", 2.0, 2, 2, error=ValueError("bad input")),
        started(2.0, 4, 2),
        ended("job_retrying", 2.5, 4, 2, error=WorkerCrashedError(102, -9, "job4")),
        worker("worker_exited", 2.5, 2, -9),
        ended("job_succeeded", 3.0, 3, 1),
        worker("worker_started", 3.0, 3),
        started(3.0, 4, 3, attempt=2),
        ended("job_succeeded", 4.0, 4, 3, attempt=2),
        started(4.0, 5, 1),
        ended("job_failed", 5.0, 5, 1, error=JobTimeoutError(1.0, "job5")),
        worker("worker_exited", 5.0, 1, -9),
    ]


def test_attempts_outcomes_lanes_and_utilisation() -> None:
    timeline = Timeline.from_events(a_run(), size=2)
    outcomes = [(a.job_id, a.attempt, a.outcome, a.retried, a.lane) for a in timeline.attempts]
    assert outcomes == [
        (1, 1, "succeeded", False, 0),
        (2, 1, "failed", False, 1),
        (3, 1, "succeeded", False, 0),
        (4, 1, "crashed", True, 1),
        (
            4,
            2,
            "succeeded",
            False,
            1,
        ),  # the replacement worker takes the lane of the one it replaced
        (5, 1, "timed out", False, 0),
    ]
    assert timeline.duration == pytest.approx(5.0)
    assert timeline.lanes == 2
    # lane 0 ran 1 + 2 + 1 s of 5; lane 1 ran 2 + 0.5 + 1 s of 5
    assert timeline.utilisation() == pytest.approx([0.8, 0.7])
    assert timeline.overall_utilisation == pytest.approx(0.75)
    assert [(w.worker, w.lane, w.exitcode) for w in timeline.workers] == [
        (1, 0, -9),
        (2, 1, -9),
        (3, 1, None),
    ]
    assert timeline.workers[1].utilisation == pytest.approx(2.5 / 2.5)
    assert [timeline.lane_label(lane) for lane in (0, 1)] == ["worker 1", "worker 2, 3"]
    assert timeline.attempts[1].error == "ValueError: bad input"
    # by each job's last attempt: job 4 crashed once, then succeeded
    assert timeline.counts() == {
        "jobs": 5,
        "attempts": 6,
        "retried": 1,
        "backups": 0,
        "succeeded": 3,
        "failed": 1,
        "timed out": 1,
    }


def test_an_attempt_whose_worker_exits_before_its_outcome_is_a_lost_crash() -> None:
    events = [
        worker("worker_started", 0.0, 1),
        started(0.0, 1, 1),
        worker("worker_exited", 1.0, 1, 3),
        worker("worker_started", 1.0, 2),
        started(1.0, 1, 2),
        ended("job_succeeded", 2.0, 1, 2),
    ]
    first, second = Timeline.from_events(events).attempts
    assert (first.outcome, first.retried, first.end, first.worker) == ("crashed", True, 1.0, 1)
    assert first.error is not None
    assert "code 3" in first.error
    assert (second.outcome, second.worker, second.lane) == ("succeeded", 2, 0)


def test_an_unfinished_attempt_is_running_until_the_timeline_is_taken() -> None:
    events = [worker("worker_started", 0.0, 1), started(0.0, 1, 1)]
    timeline = Timeline.from_events(events)
    (attempt,) = timeline.attempts
    assert attempt.outcome == "running"
    assert attempt.end == timeline.duration > 1000  # up to now: T0 is long past


def test_jobs_that_ran_on_no_worker_and_cancelled_jobs() -> None:
    events = [
        ended("job_failed", 0.5, 1, None, error=TypeError("does not pickle")),
        ended("job_cancelled", 0.6, 2, None),  # cancelled before it ran: nothing to draw
        worker("worker_started", 0.0, 1),
        started(0.7, 3, 1),
        ended("job_cancelled", 0.9, 3, 1),  # stopped while it ran
    ]
    timeline = Timeline.from_events(events, started_at=T0)
    assert [(a.job_id, a.outcome, a.lane) for a in timeline.attempts] == [
        (1, "failed", -1),
        (3, "cancelled", 0),
    ]
    assert timeline.lane_label(-1) == "no worker"
    assert "no worker" in timeline.to_html()


def test_workers_seen_only_through_their_jobs_and_string_ids() -> None:
    events = [
        started(0.0, 1, 1),
        Event("job_started", T0 + 0.5, 2, "j", 1, "tcp://127.0.0.1:4001", None),
        ended("job_succeeded", 1.0, 1, 1),
        Event("job_succeeded", T0 + 2.0, 2, "j", 1, "tcp://127.0.0.1:4001", None),
    ]
    timeline = Timeline.from_events(events, backend="dask")
    assert [(w.worker, w.start, w.lane) for w in timeline.workers] == [
        (1, 0.0, 0),
        ("tcp://127.0.0.1:4001", 0.0, 1),
    ]
    assert timeline.lane_label(1) == "127.0.0.1:4001"
    assert "tcp://127.0.0.1:4001" in timeline.to_html()


def test_an_empty_timeline_draws() -> None:
    timeline = Timeline.from_events([])
    assert (timeline.attempts, timeline.workers, timeline.duration) == ((), (), 0.0)
    assert "0 jobs" in timeline.to_html()


def test_the_page_names_every_job_marks_each_outcome_and_fetches_nothing(tmp_path: Path) -> None:
    path = Timeline.from_events(a_run(), size=2).save_html(tmp_path / "run.html")
    page = parse(path.read_text(encoding="utf-8"))
    assert page.external == []
    assert {"svg", "style", "script", "table"} <= set(page.tags)
    titles = {a["title"].splitlines()[0] for a in page.attempts}
    assert {f"job{j} (job {j}, attempt 1)" for j in (1, 2, 3, 4, 5)} <= titles
    by_job = {(a["job"], "retried" in a["classes"]): a["classes"] for a in page.attempts}
    assert "failed" in by_job[("2", False)]
    assert "crashed" in by_job[("4", True)]
    assert "timed-out" in by_job[("5", False)]
    assert "succeeded" in by_job[("4", False)]
    assert "bad input" in next(a["title"] for a in page.attempts if a["job"] == "2")


def test_names_are_escaped() -> None:
    events = [started(0.0, 1, 1, name="<script>alert(1)</script>"), ended("job_failed", 1.0, 1, 1)]
    html = Timeline.from_events(events).to_html(title="a & b")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>a &amp; b</title>" in html


def test_the_png_is_a_png_of_a_sensible_size(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = Timeline.from_events(a_run(), size=2).save_png(tmp_path / "run.png")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1200
    assert 150 < height < 600
    assert 5_000 < len(data) < 150_000


def test_a_png_without_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"taskpool-py\[timeline\]"):
        Timeline.from_events(a_run()).save_png(tmp_path / "run.png")
    assert not (tmp_path / "run.png").exists()


@pytest.mark.parametrize(
    ("name", "fits", "shown"),
    [
        ("square", 10, "square"),
        ("collatz_steps[40000..59999]", 20, "colla…[40000..59999]"),
        ("collatz_steps[40000..59999]", 14, "[40000..59999]"),
        ("collatz_steps[40000..59999]", 8, "[40000.…"),
        ("a_long_function_name", 8, "a_long_…"),
    ],
)
def test_short_names_keep_what_tells_jobs_apart(name: str, fits: int, shown: str) -> None:
    assert short_name(name, fits) == shown
    assert len(shown) <= fits
