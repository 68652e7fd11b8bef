"""What workers write below ``print`` reaches the parent: descriptors 1 and 2, C stdio, child processes.

A worker's descriptors 1 and 2 are pipes the parent reads, so output written at the descriptor level arrives
in whole lines, before the job's outcome, tagged with the job (or with no job, when a process writes after
its job ended), and a process that holds the pipes open never delays a crash's detection or the shutdown.
"""

from __future__ import annotations

import contextlib
import faulthandler
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import taskpool
from taskpool import InitializerError, TaskPool, WorkerCrashedError
from taskpool._backends.process.backend import ProcessBackend
from taskpool._core.future import JobFuture
from taskpool._core.job import Job, JobOptions, job_name
from taskpool._core.reports import Report, ReportKind

from .. import _output_jobs as jobs
from ._sink import Sink

TIMEOUT = 30.0
_ids = itertools.count(1)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_what_a_job_writes_below_print_arrives_before_its_future_completes(
    method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with TaskPool(2, start_method=method) as pool:
        assert pool.submit(jobs.write_every_way, "a").result(TIMEOUT) == "a"
        # The event thread printed them before it completed the future: no wait here.
        out, err = capsys.readouterr()
        assert out.splitlines() == ["fd-a", "child-out-a", "buffer-a", "printf-a"]
        assert err.splitlines() == ["child-err-a"]


def test_lines_written_in_pieces_at_the_descriptor_level_arrive_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TaskPool(2) as pool:
        futures = [pool.submit(jobs.write_lines_in_halves, f"w{n}", 200) for n in range(2)]
        assert [f.result(TIMEOUT) for f in futures] == [200, 200]
    lines = capsys.readouterr().out.splitlines()
    for n in range(2):
        assert [line for line in lines if line.startswith(f"w{n} ")] == [
            f"w{n} {i} {'x' * 100}" for i in range(200)
        ]
    assert len(lines) == 400  # nothing torn: each line is one of the above


def test_faulthandler_enable_works_as_initializer_and_in_jobs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TaskPool(2, initializer=faulthandler.enable) as pool:
        assert pool.submit(jobs.faulthandler_state).result(TIMEOUT) == (True, 2)
        pid = pool.submit(jobs.dump_traceback).result(TIMEOUT)
        assert pid != os.getpid()
        assert "in dump_traceback" in capsys.readouterr().err


def test_a_crash_dump_reaches_the_parent_before_the_crash_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TaskPool(2) as pool:
        future = pool.submit(jobs.segfault_with_faulthandler)
        with pytest.raises(WorkerCrashedError) as caught:
            future.result(TIMEOUT)
        assert caught.value.signal == signal.SIGSEGV
        err = capsys.readouterr().err
        assert "Fatal Python error: Segmentation fault" in err
        assert "in segfault_with_faulthandler" in err
        assert pool.submit(jobs.identity, 3).result(TIMEOUT) == 3


def test_spawn_forwards_what_its_process_writes_below_print(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert taskpool.spawn(jobs.write_every_way, "s").result(TIMEOUT) == "s"
    out, err = capsys.readouterr()
    assert out.splitlines() == ["fd-s", "child-out-s", "buffer-s", "printf-s"]
    assert err.splitlines() == ["child-err-s"]


def test_capture_output_false_leaves_the_descriptors_alone() -> None:
    with TaskPool(1, capture_output=False) as pool:
        enabled, fd = pool.submit(jobs.faulthandler_state).result(TIMEOUT)
    assert fd == 2
    assert not enabled


def test_an_initializer_that_needs_a_real_descriptor_is_no_initializer_error() -> None:
    try:
        with TaskPool(1, initializer=faulthandler.enable) as pool:
            assert pool.submit(jobs.identity, 1).result(TIMEOUT) == 1
    except InitializerError as exc:  # pragma: no cover - the failure this test exists to catch
        pytest.fail(f"faulthandler.enable as initializer failed: {exc}")


# -- which job a line belongs to (the backend's reports) ------------------------------------------------------


def _job(fn: Callable[..., Any], *args: Any) -> Job:
    job_id = next(_ids)
    return Job(job_id, fn, args, {}, JobOptions(), JobFuture(job_id, job_name(fn)))


def _output(text: str) -> Callable[[Report], bool]:
    def match(report: Report) -> bool:
        value = report[4]
        return report[0] == ReportKind.OUTPUT and isinstance(value, tuple) and text in value[1]

    return match


@pytest.fixture
def backend() -> Iterator[tuple[ProcessBackend, Sink]]:
    sink = Sink()
    b = ProcessBackend(1)
    b.start(sink)
    try:
        yield b, sink
    finally:
        b.shutdown(wait=False)


def test_what_a_process_writes_after_its_job_ended_is_the_workers(
    backend: tuple[ProcessBackend, Sink], tmp_path: Path
) -> None:
    b, sink = backend
    trigger = tmp_path / "go"
    job = _job(jobs.start_late_writer, str(trigger))
    b.submit(job)
    done = sink.wait_for(lambda r: r[1] is job and r[0] == ReportKind.SUCCEEDED)
    early = sink.wait_for(_output("early-line"))
    assert early[1] is job
    assert sink.reports.index(early) < sink.reports.index(done)
    trigger.touch()  # the job is over (its outcome is reported): now the child writes
    late = sink.wait_for(_output("late-line"))
    assert late[1] is None
    assert late[2] == done[2]  # the same worker


def test_a_child_process_writing_for_its_job_is_that_jobs(
    backend: tuple[ProcessBackend, Sink],
) -> None:
    b, sink = backend
    job = _job(jobs.write_every_way, "t")
    b.submit(job)
    done = sink.wait_for(lambda r: r[1] is job and r[0] == ReportKind.SUCCEEDED)
    lines = [r for r in sink.reports[: sink.reports.index(done)] if r[0] == ReportKind.OUTPUT]
    assert {r[1] for r in lines} == {job}
    text = "".join(r[4][1] for r in lines)  # type: ignore[index]
    for expected in ("fd-t\n", "child-out-t\n", "child-err-t\n", "buffer-t\n", "printf-t"):
        assert expected in text


# -- a process that keeps the pipes open -----------------------------------------------------------------------


def test_a_killed_worker_is_replaced_while_a_process_it_started_holds_its_output(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "holder.pid"
    holder = 0
    started = time.monotonic()
    try:
        with TaskPool(1) as pool:
            doomed = pool.submit(jobs.hold_output_and_block, str(pid_file))
            deadline = time.monotonic() + TIMEOUT
            while not pid_file.exists():  # the job's own signal that its child runs
                assert time.monotonic() < deadline, "the job never started its child"
                time.sleep(0.01)
            holder, worker = map(int, pid_file.read_text(encoding="utf-8").split())
            os.kill(worker, signal.SIGKILL)
            with pytest.raises(WorkerCrashedError):
                doomed.result(TIMEOUT)
            assert pool.submit(jobs.identity, 5).result(TIMEOUT) == 5
        # The crash was seen, a worker replaced it, and the pool shut down, all while the child lives on
        # with the dead worker's stdout open.
        assert time.monotonic() - started < 20
    finally:
        if holder:
            with contextlib.suppress(ProcessLookupError):
                os.kill(holder, signal.SIGKILL)
