"""Progress bars: ``progress=`` on map/starmap/imap/imap_unordered and `as_completed`, quiet off a terminal."""

from __future__ import annotations

import concurrent.futures as cf
import io
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from taskpool import JobFuture, TaskPool, as_completed

from .. import jobs
from ._terminal import run_in_pty, screen_lines, torn_lines

TIMEOUT = 30.0


def last_line(output: str) -> str:
    """The last line tqdm drew (it redraws a line after a carriage return)."""
    return output.replace("\r", "\n").strip().splitlines()[-1]


def final_count(output: str) -> str:
    """The ``n/total`` of the last line tqdm drew."""
    words = last_line(output).replace("|", " ").split()
    return next(word for word in words if "/" in word and word[0].isdigit())


def bar(buf: io.StringIO, **extra: Any) -> dict[str, Any]:
    return {"file": buf, "disable": False, "mininterval": 0, **extra}


def test_map_draws_a_bar_that_counts_items(any_pool: TaskPool) -> None:
    buf = io.StringIO()
    assert any_pool.map(jobs.square, range(37), chunksize=5, progress=bar(buf, desc="squares")) == [
        i * i for i in range(37)
    ]
    assert final_count(buf.getvalue()) == "37/37"
    assert "squares" in buf.getvalue()


def test_starmap_imap_and_imap_unordered_bars_end_complete() -> None:
    with TaskPool(2) as pool:
        buf = io.StringIO()
        assert pool.starmap(jobs.add, [(i, 1) for i in range(10)], progress=bar(buf)) == list(
            range(1, 11)
        )
        assert final_count(buf.getvalue()) == "10/10"
        buf = io.StringIO()
        assert list(pool.imap(jobs.square, range(25), chunksize=4, progress=bar(buf))) == [
            i * i for i in range(25)
        ]
        # An input with a length gives the bar its total, without reading the input ahead.
        assert final_count(buf.getvalue()) == "25/25"
        buf = io.StringIO()
        got = sorted(pool.imap_unordered(jobs.square, range(25), progress=bar(buf)))
        assert got == [i * i for i in range(25)]
        assert final_count(buf.getvalue()) == "25/25"
        buf = io.StringIO()
        lazy = (i for i in range(25))
        got = sorted(pool.imap_unordered(jobs.square, lazy, progress=bar(buf)))
        assert got == [i * i for i in range(25)]
        # No total for a generator: imap reads its input lazily.
        assert last_line(buf.getvalue()).startswith("25item ")


def test_a_bar_is_quiet_when_its_output_is_not_a_terminal() -> None:
    buf = io.StringIO()  # not a tty: tqdm's default disable=None keeps quiet
    with TaskPool(2, backend="thread") as pool:
        assert pool.map(jobs.square, range(5), progress={"file": buf}) == [0, 1, 4, 9, 16]
        assert list(as_completed([pool.submit(jobs.square, 2)], progress={"file": buf}))
    assert buf.getvalue() == ""


def test_map_with_progress_true_and_a_description_still_returns_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TaskPool(2, backend="thread") as pool:
        assert pool.map(jobs.square, range(4), progress=True) == [0, 1, 4, 9]
        assert pool.map(jobs.square, range(4), progress="working") == [0, 1, 4, 9]
    assert capsys.readouterr().err == ""  # stderr is captured, not a terminal


def test_a_bad_progress_argument_is_refused() -> None:
    with TaskPool(1, backend="inline") as pool, pytest.raises(TypeError, match="progress must be"):
        pool.map(jobs.square, range(3), progress=3)  # type: ignore[arg-type]


def test_as_completed_yields_every_future_once_as_it_finishes(any_pool: TaskPool) -> None:
    futures = [any_pool.submit(jobs.square, i) for i in range(6)]
    buf = io.StringIO()
    seen = list(
        as_completed([*futures, futures[0]], timeout=TIMEOUT, progress=bar(buf, desc="jobs"))
    )
    assert sorted(f.job_id for f in seen) == sorted(f.job_id for f in futures)
    assert all(f.done() for f in seen)
    assert sorted(f.result() for f in seen) == [i * i for i in range(6)]
    assert final_count(buf.getvalue()) == "6/6"
    assert "job" in buf.getvalue()


def test_as_completed_yields_in_completion_order() -> None:
    gate = threading.Event()
    with TaskPool(2, backend="thread") as pool:
        slow = pool.submit(gate.wait, TIMEOUT)
        fast = pool.submit(jobs.square, 3)
        both: list[cf.Future[Any]] = [slow, fast]
        it = as_completed(both, timeout=TIMEOUT)
        assert next(it) is fast
        gate.set()
        assert next(it) is slow
        with pytest.raises(StopIteration):
            next(it)


def test_as_completed_times_out_and_closes_its_bar() -> None:
    gate = threading.Event()
    buf = io.StringIO()
    with TaskPool(1, backend="thread") as pool:
        blocked = pool.submit(gate.wait, TIMEOUT)
        futures: list[cf.Future[Any]] = [pool.submit(jobs.square, 2), blocked]
        it = as_completed(futures, timeout=0.2, progress=bar(buf))
        with pytest.raises(cf.TimeoutError):
            list(it)
        gate.set()
        assert blocked.result(TIMEOUT) is True
    # The square waits behind the blocked job on the one thread, so nothing finished in time.
    assert final_count(buf.getvalue()) == "0/2"
    assert buf.getvalue().endswith("\n")


def test_leaving_as_completed_early_closes_its_bar() -> None:
    buf = io.StringIO()
    with TaskPool(1, backend="inline") as pool:
        futures: list[JobFuture[int]] = [pool.submit(jobs.square, i) for i in range(3)]
        it = as_completed(futures, progress=bar(buf))
        next(it)
        it.close()
    assert final_count(buf.getvalue()) == "1/3"
    assert buf.getvalue().endswith("\n")  # tqdm ends a closed bar's line


def test_as_completed_without_progress_takes_plain_futures() -> None:
    with cf.ThreadPoolExecutor(1) as executor:
        futures = [executor.submit(pow, 2, i) for i in range(3)]
        assert sorted(f.result() for f in as_completed(futures, timeout=TIMEOUT)) == [1, 2, 4]


_CHATTY_MAP = """
import logging, sys
from taskpool import TaskPool
from tests import jobs
logging.basicConfig(format="%(message)s")  # records of the jobs, emitted in the parent on stderr
with TaskPool(2) as pool:
    pool.map(jobs.print_and_log, range(30), chunksize=1, progress={"mininterval": 0, "miniters": 1})
"""


def test_jobs_that_print_and_log_never_cut_the_progress_bar() -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    text, status = run_in_pty([sys.executable, "-c", _CHATTY_MAP], env, str(root), TIMEOUT)
    assert status == 0, text
    screen = screen_lines(text)
    # Everything the jobs printed and logged reached the terminal, and the bar was drawn...
    assert sum("job-print-" in line for line in screen) == 30, text
    assert sum("job-log-" in line for line in screen) == 30, text
    assert any("30/30" in line for line in screen), text
    # ...yet never on the same line as the bar.
    assert torn_lines(text, "item/s]", ("job-print-", "job-log-")) == []
