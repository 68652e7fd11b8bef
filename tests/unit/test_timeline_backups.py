"""Backup copies on a timeline, from hand-made events: each copy is a bar of its own on its worker, the one
that brought the outcome has it, and the other is drawn stopped (or crashed, where its worker died)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from tests._timeline_events import T0, ended, started, worker
from tests._timeline_page import PNG_SIGNATURE, parse

from taskpool import Event, Timeline


def backup(t: float, job: int, wid: int) -> Event:
    return Event("job_backup_started", T0 + t, job, f"job{job}", 1, wid, 100 + wid)


def race(winner: int) -> list[Event]:
    """Job 1 starts on worker 1, its copy on worker 2 a second later; ``winner`` brings the outcome."""
    return [
        worker("worker_started", 0.0, 1),
        worker("worker_started", 0.0, 2),
        started(0.0, 1, 1),
        backup(1.0, 1, 2),
        ended("job_succeeded", 1.5, 1, winner),
    ]


@pytest.mark.parametrize("winner", [1, 2])
def test_the_copy_that_finished_first_succeeded_and_the_other_was_stopped(winner: int) -> None:
    timeline = Timeline.from_events(race(winner), size=2)
    bars = {(a.worker, a.backup): a for a in timeline.attempts}
    assert set(bars) == {(1, False), (2, True)}
    first, copy = bars[(1, False)], bars[(2, True)]
    assert (first.start, first.end, copy.start, copy.end) == (0.0, 1.5, 1.0, 1.5)
    won, lost = (first, copy) if winner == 1 else (copy, first)
    assert won.outcome == "succeeded"
    assert lost.outcome == "cancelled"
    assert "other copy finished first" in (lost.error or "")
    assert timeline.counts() == {
        "jobs": 1,
        "attempts": 1,
        "retried": 0,
        "backups": 1,
        "succeeded": 1,
    }


def test_a_copy_whose_worker_died_crashed_alone_and_the_first_copy_ran_on() -> None:
    events = [*race(1)[:4], worker("worker_exited", 1.25, 2, -9), ended("job_succeeded", 2.0, 1, 1)]
    timeline = Timeline.from_events(events, size=2)
    outcomes = {(a.worker, a.backup): (a.outcome, a.retried, a.end) for a in timeline.attempts}
    assert outcomes == {(1, False): ("succeeded", False, 2.0), (2, True): ("crashed", False, 1.25)}
    assert timeline.counts()["succeeded"] == 1
    assert "crashed" not in timeline.counts()


def test_when_the_first_copys_worker_died_the_backup_ran_on_as_the_attempt() -> None:
    events = [*race(2)[:4], worker("worker_exited", 1.25, 1, -9), ended("job_succeeded", 2.0, 1, 2)]
    timeline = Timeline.from_events(events, size=2)
    outcomes = {(a.worker, a.backup): (a.outcome, a.retried, a.end) for a in timeline.attempts}
    assert outcomes == {(1, False): ("crashed", False, 1.25), (2, True): ("succeeded", False, 2.0)}
    assert timeline.counts()["succeeded"] == 1


def test_the_page_and_the_picture_mark_backup_copies(tmp_path: Path) -> None:
    timeline = Timeline.from_events(race(2), size=2)
    html = timeline.to_html()
    page = parse(html)
    copies = [a for a in page.attempts if "backup" in a["classes"]]
    assert len(copies) == 1
    assert "backup copy" in copies[0]["title"]
    assert "backup copy (dashed outline)" in html  # the legend says what the outline means
    assert "1 backup copy" in html  # and the summary counts it
    pytest.importorskip("matplotlib")
    data = timeline.save_png(tmp_path / "race.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert struct.unpack(">II", data[16:24])[0] == 1200
