"""`get_logger` and log forwarding: records from jobs are emitted whole by the parent's handlers, with the job's
id and the worker's pid; printed lines arrive whole; a killed worker never blocks the others' logs.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import pytest

from taskpool import TaskPool, WorkerCrashedError, get_logger

from .. import _task_jobs as jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 30.0


class ListHandler(logging.Handler):
    """Keeps every record it gets; `first` is set by the first record whose message starts with ``watch``."""

    def __init__(self, watch: str = "\0") -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.watch = watch
        self.first = threading.Event()
        self.setFormatter(logging.Formatter("%(job_id)s|%(job_name)s|%(process)d|%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))
        if record.getMessage().startswith(self.watch):
            self.first.set()


@pytest.fixture
def handler() -> Iterator[ListHandler]:
    h = ListHandler()
    logger = logging.getLogger(jobs.LOGGER_NAME)
    logger.addHandler(h)
    try:
        yield h
    finally:
        logger.removeHandler(h)


def test_logging_before_any_pool_just_works(handler: ListHandler) -> None:
    log = get_logger(jobs.LOGGER_NAME)
    assert log is logging.getLogger(jobs.LOGGER_NAME)
    log.warning("hello %s", "there")
    assert handler.lines == [f"None|None|{os.getpid()}|hello there"]


def test_get_logger_is_idempotent() -> None:
    log = get_logger("tests.idempotent")
    get_logger("tests.idempotent")
    assert len(log.filters) == 1


def test_job_records_reach_the_parent_with_job_id_and_worker_pid(
    start_method: str, handler: ListHandler
) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        pid = pool.submit(jobs.getpid_after_log, "a").result(TIMEOUT)
        future = pool.submit(jobs.log_lines, "b", 3, 40)
        assert future.result(TIMEOUT) == 3
    # Records a job logs are emitted before its result is set, so they are all here now.
    first = handler.records[0]
    assert first.process == pid != os.getpid()
    assert first.getMessage() == "a"
    mine = [r for r in handler.records if r.getMessage().startswith("b ")]
    assert [jobs.verify_line(r.getMessage()) for r in mine] == [("b", i) for i in range(3)]
    assert {getattr(r, "job_id", None) for r in mine} == {future.job_id}
    assert {getattr(r, "job_name", None) for r in mine} == {"log_lines"}
    assert handler.lines[1].startswith(f"{future.job_id}|log_lines|")


def test_a_job_logging_an_exception_sends_the_traceback_text(handler: ListHandler) -> None:
    with TaskPool(1) as pool:
        pool.submit(jobs.log_with_exception).result(TIMEOUT)
    (record,) = handler.records
    assert record.getMessage() == "caught it"
    assert record.exc_text is not None
    assert "KeyError: 'inside'" in record.exc_text
    assert "KeyError: 'inside'" in logging.Formatter().format(record)


def test_parent_levels_decide(handler: ListHandler) -> None:
    logger = logging.getLogger(jobs.LOGGER_NAME)
    logger.setLevel(logging.ERROR)
    try:
        with TaskPool(1) as pool:
            pool.submit(jobs.log_lines, "quiet", 2, 10).result(TIMEOUT)
    finally:
        logger.setLevel(logging.NOTSET)
    assert handler.records == []


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_thread_and_inline_jobs_log_with_their_job_id(backend: str, handler: ListHandler) -> None:
    with TaskPool(2, backend=backend) as pool:
        futures = [pool.submit(jobs.log_lines, f"t{n}", 4, 30) for n in range(3)]
        for future in futures:
            assert future.result(TIMEOUT) == 4
    for n, future in enumerate(futures):
        records = [r for r in handler.records if r.getMessage().startswith(f"t{n} ")]
        assert len(records) == 4
        assert {getattr(r, "job_id", None) for r in records} == {future.job_id}
        assert {r.process for r in records} == {os.getpid()}
    get_logger(jobs.LOGGER_NAME).warning("after")
    assert handler.lines[-1].startswith("None|None|")


def test_caplog_sees_worker_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with TaskPool(1) as pool:
        pool.submit(jobs.log_lines, "cap", 2, 20).result(TIMEOUT)
    messages = [r.getMessage() for r in caplog.records if r.name == jobs.LOGGER_NAME]
    assert [jobs.verify_line(m) for m in messages] == [("cap", 0), ("cap", 1)]


def test_a_worker_killed_while_logging_leaves_no_lock_held(start_method: str) -> None:
    handler = ListHandler(watch="doomed ")
    logger = logging.getLogger(jobs.LOGGER_NAME)
    logger.addHandler(handler)
    try:
        with TaskPool(2, start_method=start_method) as pool:
            doomed = pool.submit(jobs.log_forever, "doomed")
            assert handler.first.wait(TIMEOUT), "the looping job never logged"
            victim = next(
                r.process for r in handler.records if r.getMessage().startswith("doomed ")
            )
            assert victim is not None
            os.kill(victim, 9)
            with pytest.raises(WorkerCrashedError):
                doomed.result(TIMEOUT)
            # Both the surviving worker and the replacement must still get their records through.
            futures = [pool.submit(jobs.log_lines, f"alive{n}", 50, 100) for n in range(4)]
            assert [f.result(TIMEOUT) for f in futures] == [50] * 4
    finally:
        logger.removeHandler(handler)
    for n in range(4):
        got = [
            jobs.verify_line(r.getMessage())
            for r in handler.records
            if r.getMessage().startswith(f"alive{n} ")
        ]
        assert got == [(f"alive{n}", i) for i in range(50)]
    torn = [r.getMessage() for r in handler.records if jobs.verify_line(r.getMessage()) is None]
    assert torn == []


def test_printed_lines_arrive_whole(start_method: str, capsys: pytest.CaptureFixture[str]) -> None:
    with TaskPool(2, start_method=start_method) as pool:
        futures = [pool.submit(jobs.print_checked, f"p{n}", 100, 150) for n in range(4)]
        assert [f.result(TIMEOUT) for f in futures] == [100] * 4
    out = capsys.readouterr().out.splitlines()
    parsed = [jobs.verify_line(line) for line in out]
    assert None not in parsed
    for n in range(4):
        assert [p for p in parsed if p is not None and p[0] == f"p{n}"] == [
            (f"p{n}", i) for i in range(100)
        ]


def test_a_worker_killed_while_printing_leaves_no_lock_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = threading.Event()
    pids: list[int] = []
    with TaskPool(2) as pool:

        def on_started(event: object) -> None:
            pids.append(getattr(event, "pid", 0))
            started.set()

        remove = pool.on("job_started", on_started)
        doomed = pool.submit(jobs.print_forever, "doomed")
        assert started.wait(TIMEOUT)
        remove()
        os.kill(pids[0], 9)
        with pytest.raises(WorkerCrashedError):
            doomed.result(TIMEOUT)
        futures = [pool.submit(jobs.print_checked, f"alive{n}", 50, 100) for n in range(4)]
        assert [f.result(TIMEOUT) for f in futures] == [50] * 4
    parsed = [jobs.verify_line(line) for line in capsys.readouterr().out.splitlines()]
    assert None not in parsed  # the killed worker's lines too: each one whole or absent
    for n in range(4):
        assert [p for p in parsed if p is not None and p[0] == f"alive{n}"] == [
            (f"alive{n}", i) for i in range(50)
        ]
