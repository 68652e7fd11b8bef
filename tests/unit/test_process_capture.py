"""The scheduler's ends of a worker's stdout and stderr pipes: lines, decoding, end of file, and the order of a
job's output and its outcome. Pipes only: no process is started.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskpool._backends.process.capture import Capture
from taskpool._backends.process.handle import Worker
from taskpool._backends.process.protocol import (
    FrameReader,
    FrameWriter,
    result_message,
    write_frame,
)
from taskpool._backends.process.scheduler import Scheduler
from taskpool._core.future import JobFuture
from taskpool._core.job import Job, JobOptions
from taskpool._core.reports import Report, ReportKind


@pytest.fixture
def pipes() -> Iterator[tuple[Capture, Connection, Connection]]:
    """A `Capture` and the write ends of its stdout and stderr pipes."""
    out_r, out_w = multiprocessing.Pipe(duplex=False)
    err_r, err_w = multiprocessing.Pipe(duplex=False)
    capture = Capture(out_r, err_r)
    try:
        yield capture, out_w, err_w
    finally:
        capture.close()
        out_w.close()
        err_w.close()


def test_whole_lines_come_out_and_the_rest_waits(
    pipes: tuple[Capture, Connection, Connection],
) -> None:
    capture, out, err = pipes
    assert capture.read() == ([], [])
    os.write(out.fileno(), b"one\ntw")
    os.write(err.fileno(), b"e1\n")
    assert capture.read() == ([("stdout", "one\n"), ("stderr", "e1\n")], [])
    assert capture.has_rest()
    os.write(out.fileno(), b"o\nthr")
    assert capture.read() == ([("stdout", "two\n")], [])
    assert capture.rest() == [("stdout", "thr")]
    assert not capture.has_rest()
    assert capture.rest() == []


def test_text_is_utf8_even_split_between_reads_and_bad_bytes_are_escaped(
    pipes: tuple[Capture, Connection, Connection],
) -> None:
    capture, out, _ = pipes
    data = "é€\n".encode()
    os.write(out.fileno(), data[:3])  # cuts the euro sign in two
    assert capture.read() == ([], [])
    os.write(out.fileno(), data[3:] + b"\xff\n")
    assert capture.read() == ([("stdout", "é€\n\\xff\n")], [])


def test_a_pipe_nobody_writes_to_any_more_is_reported_once(
    pipes: tuple[Capture, Connection, Connection],
) -> None:
    capture, out, _ = pipes
    os.write(out.fileno(), b"last")
    out.close()
    assert capture.read() == ([], [])  # "last" is an unfinished line
    assert capture.read() == ([], [capture.fds[0]])
    assert capture.live == [capture.fds[1]]
    assert capture.read() == ([], [])
    assert capture.rest() == [("stdout", "last")]


@given(st.lists(st.binary(max_size=40), max_size=12))
def test_any_split_of_the_stream_gives_the_same_lines(chunks: list[bytes]) -> None:
    out_r, out_w = multiprocessing.Pipe(duplex=False)
    err_r, err_w = multiprocessing.Pipe(duplex=False)
    capture = Capture(out_r, err_r)
    try:
        text = ""
        for chunk in chunks:
            if chunk:
                os.write(out_w.fileno(), chunk)
            pieces, _ = capture.read()
            for stream, lines in pieces:
                assert stream == "stdout"
                assert lines.endswith("\n")
                text += lines
        text += "".join(rest for _, rest in capture.rest())
        assert text == b"".join(chunks).decode("utf-8", "backslashreplace")
    finally:
        for conn in (out_w, err_w):
            conn.close()
        capture.close()


class _Process:
    """What a `Worker` needs of its process here."""

    pid = 4242
    sentinel = -1


def test_a_jobs_output_is_reported_before_its_outcome_and_tagged_with_it(
    pipes: tuple[Capture, Connection, Connection],
) -> None:
    """The worker wrote its output, then the frame of its outcome; the scheduler reads the frame first (it
    is what woke it), and must report the output before the outcome all the same."""
    capture, out, _ = pipes
    results_r, results_w = multiprocessing.Pipe(duplex=False)
    jobs_r, jobs_w = multiprocessing.Pipe(duplex=False)
    stack_r, stack_w = multiprocessing.Pipe(duplex=False)
    scheduler = Scheduler(
        1,
        multiprocessing.get_context("fork"),
        initializer=None,
        initargs=(),
        max_tasks=None,
        capture_output=True,
        dropped_functions=deque(),
    )
    w = Worker(
        1,
        _Process(),
        FrameReader(results_r.fileno()),
        FrameWriter(jobs_w.fileno()),
        None,
        None,
        None,
        results_r,
        jobs_w,
        -1,
        stack_r,
        None,
        capture,
    )
    job = Job(7, len, (), {}, JobOptions(), JobFuture(7, "len"))
    w.inflight[job.id] = job
    try:
        os.write(out.fileno(), b"printed\nunfinished")
        write_frame(results_w.fileno(), [result_message(7, True, pickle.dumps(5), None, 0.001)])
        reports: list[Report] = []
        scheduler._read(w, reports)
        summary: list[tuple[Any, ...]] = [
            (kind, job_, value) for kind, job_, _, _, value, _ in reports
        ]
        assert summary == [
            (ReportKind.OUTPUT, job, ("stdout", "printed\n")),
            (ReportKind.OUTPUT, job, ("stdout", "unfinished")),
            (ReportKind.SUCCEEDED, job, 5),
        ]
        # With no job held, what comes is the worker's.
        os.write(out.fileno(), b"late\n")
        reports = []
        scheduler._read_output(w, reports)
        assert [(r[0], r[1], r[4]) for r in reports] == [
            (ReportKind.OUTPUT, None, ("stdout", "late\n"))
        ]
    finally:
        for conn in (results_r, results_w, jobs_r, jobs_w, stack_r, stack_w):
            conn.close()
        scheduler.wakeup.close()
