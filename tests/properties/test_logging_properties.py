"""Hypothesis: whatever the number and size of lines two busy workers log or print, every line reaches the
parent whole (its checksum holds) and none is lost or duplicated. One pool per test; examples run against it.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskpool import TaskPool

from .. import _task_jobs as jobs

TIMEOUT = 30.0

# Per job: (number of lines, line size in characters). Bounded so that an example takes milliseconds.
JOBS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 3000)), min_size=1, max_size=6)


class Collector(logging.Handler):
    """Keeps the message and job id of every record (the pool's event thread calls it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.got: list[tuple[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds the handler's own lock around emit.
        self.got.append((record.getMessage(), getattr(record, "job_id", None)))


def test_logged_lines_arrive_whole_and_complete() -> None:
    collector = Collector()
    logger = logging.getLogger(jobs.LOGGER_NAME)
    logger.addHandler(collector)
    try:
        with TaskPool(2, start_method="forkserver") as pool:

            @settings(max_examples=20, deadline=None)
            @given(JOBS)
            def check(spec: list[tuple[int, int]]) -> None:
                collector.got.clear()
                futures = [
                    pool.submit(jobs.log_lines, f"j{n}", count, size)
                    for n, (count, size) in enumerate(spec)
                ]
                assert [f.result(TIMEOUT) for f in futures] == [count for count, _ in spec]
                # A job's records are emitted before its result is set: all of them are here now.
                parsed = [(jobs.verify_line(message), job_id) for message, job_id in collector.got]
                assert all(line is not None for line, _ in parsed)
                for n, ((count, _), future) in enumerate(zip(spec, futures, strict=True)):
                    mine = [
                        (line, job_id)
                        for line, job_id in parsed
                        if line is not None and line[0] == f"j{n}"
                    ]
                    assert [line for line, _ in mine] == [(f"j{n}", i) for i in range(count)]
                    assert {job_id for _, job_id in mine} <= {future.job_id}

            check()
    finally:
        logger.removeHandler(collector)


def test_printed_lines_arrive_whole_and_complete(capsys: pytest.CaptureFixture[str]) -> None:
    with TaskPool(2, start_method="forkserver") as pool:

        @settings(max_examples=20, deadline=None)
        @given(JOBS)
        def check(spec: list[tuple[int, int]]) -> None:
            capsys.readouterr()
            futures = [
                pool.submit(jobs.print_checked, f"j{n}", count, size)
                for n, (count, size) in enumerate(spec)
            ]
            assert [f.result(TIMEOUT) for f in futures] == [count for count, _ in spec]
            # The worker flushes what a job printed before it sends the job's result.
            parsed = [jobs.verify_line(line) for line in capsys.readouterr().out.splitlines()]
            assert None not in parsed
            for n, (count, _) in enumerate(spec):
                assert [p for p in parsed if p is not None and p[0] == f"j{n}"] == [
                    (f"j{n}", i) for i in range(count)
                ]

        check()
