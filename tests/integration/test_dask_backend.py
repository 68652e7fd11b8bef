"""The Dask backend: through the Backend protocol with a fake sink, through `TaskPool`, and on a cluster of
separate OS processes (`dask scheduler` and `dask worker`) where a worker and then the scheduler are killed.

Every blocking call has a timeout; every cluster, client and process started here is closed or killed in a
finally block. The whole module is skipped when `distributed` is not installed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

distributed = pytest.importorskip("distributed")

import taskpool  # noqa: E402
from taskpool import (  # noqa: E402
    InitializerError,
    JobTimeoutError,
    RemoteTraceback,
    Retry,
    SerializationError,
    TaskpoolError,
    WorkerCrashedError,
)
from taskpool._backends.dask import cluster as dask_cluster  # noqa: E402
from taskpool._backends.dask.backend import DaskBackend, DaskConnectionError  # noqa: E402
from taskpool._core.future import JobFuture  # noqa: E402
from taskpool._core.job import Job, JobKind, JobOptions, job_name  # noqa: E402
from taskpool._core.reports import ReportKind  # noqa: E402

from .. import jobs as common_jobs  # noqa: E402
from . import _dask_jobs as jobs  # noqa: E402
from ._sink import Sink  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


# Seconds one blocking call may take; generous for a slow 2-core CI machine.
TIMEOUT = 30.0
# What a pool or backend shutdown may take.
SHUTDOWN_BOUND = 15.0
BROKEN, FAILED, LOG, OUTPUT = (
    ReportKind.BROKEN,
    ReportKind.FAILED,
    ReportKind.LOG,
    ReportKind.OUTPUT,
)
SKIPPED, STARTED, STOPPED = ReportKind.SKIPPED, ReportKind.STARTED, ReportKind.STOPPED
SUCCEEDED = ReportKind.SUCCEEDED
TERMINAL = (SUCCEEDED, FAILED, STOPPED, SKIPPED)
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.timeout(60),
    # Dask logs a worker's death and a lost scheduler at ERROR level, and its comms may be garbage-collected
    # unclosed after a kill: that is Dask reporting what the test does on purpose.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


_ids = iter(range(1, 1_000_000))


def make_job(
    fn: Callable[..., Any],
    *args: Any,
    kind: JobKind = JobKind.CALL,
    timeout: float | None = None,
    **kwargs: Any,
) -> Job:
    job_id = next(_ids)
    name = job_name(fn)
    return Job(
        job_id, fn, args, kwargs, JobOptions(timeout=timeout), JobFuture(job_id, name), kind=kind
    )


@contextlib.contextmanager
def started(backend: DaskBackend) -> Iterator[Sink]:
    sink = Sink()
    backend.start(sink)
    try:
        yield sink
    finally:
        t0 = time.monotonic()
        backend.shutdown(wait=False)
        assert time.monotonic() - t0 < SHUTDOWN_BOUND


@pytest.fixture
def backend() -> Iterator[tuple[DaskBackend, Sink]]:
    """A backend on a local cluster of two single-threaded worker processes."""
    b = DaskBackend(2)
    with started(b) as sink:
        yield b, sink


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the protocol -------------------------------------------------------------------------------------------
def test_results_of_every_job_kind(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    assert b.name == "dask"
    assert b.workers == 2
    call = make_job(jobs.add, 2, b=3)
    chunk = make_job(jobs.double, [1, 2, 3], kind=JobKind.CHUNK)
    star = make_job(pow, [(2, 3), (3, 2)], kind=JobKind.STARCHUNK)
    for job in (call, chunk, star):
        b.submit(job)
    assert sink.outcome(call)[::4][:2] == (SUCCEEDED, 5)
    assert sink.outcome(chunk)[::4][:2] == (SUCCEEDED, [2, 4, 6])
    kind, _, worker, pid, value, _ = sink.outcome(star)
    assert (kind, value) == (SUCCEEDED, [8, 9])
    assert isinstance(worker, str)
    assert worker.startswith("tcp://127.0.0.1:")
    assert isinstance(pid, int)
    assert pid != os.getpid()


def test_exception_comes_back_as_itself_with_remote_traceback(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    job = make_job(jobs.fail, 7)
    b.submit(job)
    kind, _, _, _, _, error = sink.outcome(job)
    assert kind == FAILED
    assert type(error) is jobs.JobError
    assert (error.code, error.why) == (7, "on purpose")
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "in fail" in str(error.__cause__)
    assert "JobError" in str(error.__cause__)


def test_lambdas_and_closures_travel_by_value(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    offset = 100

    def closure(x: int) -> int:
        return x + offset

    first = make_job(lambda x: x * 3, 5)
    second = make_job(closure, [1, 2], kind=JobKind.CHUNK)
    b.submit(first)
    b.submit(second)
    assert sink.outcome(first)[::4][:2] == (SUCCEEDED, 15)
    assert sink.outcome(second)[::4][:2] == (SUCCEEDED, [101, 102])


def test_what_does_not_pickle_fails_that_job_and_names_the_part(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    argument = make_job(jobs.add, threading.Lock())
    result = make_job(jobs.make_lock)
    ok = make_job(jobs.double, 4)
    for job in (argument, result, ok):
        b.submit(job)
    kind, _, _, _, _, error = sink.outcome(argument)
    assert kind == FAILED
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where) == ("arguments", "pickle", "parent")
    kind, _, _, _, _, error = sink.outcome(result)
    assert kind == FAILED
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where) == ("result", "pickle", "worker")
    assert sink.outcome(ok)[::4][:2] == (SUCCEEDED, 8)


def test_what_does_not_unpickle_in_the_parent_fails_that_job_and_says_why(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    unrebuildable = make_job(common_jobs.raise_unrebuildable)
    exits = make_job(jobs.return_exits_on_load)
    ok = make_job(jobs.double, 4)
    for job in (unrebuildable, exits, ok):
        b.submit(job)
    kind, _, _, _, _, error = sink.outcome(unrebuildable)
    assert kind == FAILED
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where) == ("exception", "unpickle", "parent")
    assert "the job raised tests.jobs.NeedsKeywordError: cannot rebuild me" in error.reason
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "in raise_unrebuildable" in str(error.__cause__)
    # SystemExit raised while unpickling a result is the job's data misbehaving: it fails that job only.
    kind, _, _, _, _, error = sink.outcome(exits)
    assert kind == FAILED
    assert isinstance(error, SerializationError)
    assert (error.part, error.stage, error.where) == ("result", "unpickle", "parent")
    assert "SystemExit: this result refuses to be unpickled" in error.reason
    assert sink.outcome(ok)[::4][:2] == (SUCCEEDED, 8)


def test_logs_and_prints_are_reported_before_the_outcome(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    job = make_job(jobs.log_and_print, 9)
    b.submit(job)
    terminal = sink.outcome(job)
    assert terminal[:2] + terminal[4:5] == (SUCCEEDED, job, 9)
    reports = sink.reports
    position = reports.index(terminal)
    logs = [r for r in reports if r[0] == LOG]
    assert len(logs) == 1
    assert reports.index(logs[0]) < position
    record = logs[0][4]
    assert isinstance(record, logging.LogRecord)
    assert (record.name, record.levelno, record.getMessage()) == (
        "taskpool.tests.dask",
        logging.WARNING,
        "job says 9",
    )
    assert record.job_id == job.id  # type: ignore[attr-defined]
    assert logs[0][2] == terminal[2]
    assert logs[0][3] == terminal[3]
    output = [cast(tuple[str, str], r[4]) for r in reports if r[0] == OUTPUT]
    assert all(reports.index(r) < position for r in reports if r[0] == OUTPUT)
    assert "".join(text for stream, text in output if stream == "stdout") == "printed 9\nno newline"


def test_records_logged_through_get_logger_carry_their_job(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    job = make_job(jobs.log_through_get_logger, 5)
    b.submit(job)
    assert sink.outcome(job)[::4][:2] == (SUCCEEDED, 5)
    (record,) = [r[4] for r in sink.reports if r[0] == LOG]
    assert isinstance(record, logging.LogRecord)
    assert record.getMessage() == "tagged 5"
    assert (record.job_id, record.job_name) == (job.id, job.name)  # type: ignore[attr-defined]


def test_started_is_reported_only_when_wanted(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    quiet = make_job(jobs.double, 1)
    b.submit(quiet)
    sink.outcome(quiet)
    b.want_started(True)
    loud = make_job(jobs.nap, 0.2)
    b.submit(loud)
    terminal = sink.outcome(loud)
    starts = [r for r in sink.reports if r[0] == STARTED]
    assert [r[1] for r in starts] == [loud]
    assert sink.reports.index(starts[0]) < sink.reports.index(terminal)
    assert starts[0][2:4] == terminal[2:4]  # the same worker and pid, in the same fields


def test_timeout_fails_the_job_on_time_and_the_pool_goes_on(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    assert b.supports_timeout
    t0 = time.monotonic()
    slow = make_job(jobs.nap, 3.0, timeout=0.5)
    b.submit(slow)
    kind, _, _, pid, _, error = sink.outcome(slow)
    elapsed = time.monotonic() - t0
    assert kind == FAILED
    assert isinstance(error, JobTimeoutError)
    assert 0.5 <= elapsed < 2.5
    assert pid is not None
    assert gone(pid)  # the worker running it was killed (its nanny starts a new one)
    fast = make_job(jobs.double, 21, timeout=10)
    b.submit(fast)
    assert sink.outcome(fast)[::4][:2] == (SUCCEEDED, 42)


def test_stop_a_running_job(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    assert b.supports_stop
    b.want_started(True)
    job = make_job(jobs.nap, 3.0)
    b.submit(job)
    deadline = time.monotonic() + TIMEOUT
    while not any(r[0] == STARTED and r[1] is job for r in sink.reports):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert b.stop(job)
    kind, _, _, pid, _, _ = sink.outcome(job)
    assert kind == STOPPED
    assert not b.stop(job)  # already stopped
    assert pid is not None
    assert gone(pid)
    after = make_job(jobs.double, 3)
    b.submit(after)
    assert sink.outcome(after)[::4][:2] == (SUCCEEDED, 6)


def test_a_cancelled_job_is_skipped(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    job = make_job(jobs.double, 1)
    assert job.future.cancel()
    b.submit(job)
    assert sink.outcome(job)[:2] == (SKIPPED, job)


def test_a_dying_worker_fails_only_the_job_it_was_running(
    backend: tuple[DaskBackend, Sink],
) -> None:
    b, sink = backend
    b.want_started(True)
    dying = make_job(jobs.nap_then_crash, 0.3)
    others = [make_job(jobs.nap_then_pid, i, 0.05) for i in range(8)]
    b.submit(dying)
    for job in others:
        b.submit(job)
    kind, _, _, _, _, error = sink.outcome(dying)
    assert kind == FAILED
    assert isinstance(error, WorkerCrashedError)
    assert error.job == dying.name
    assert isinstance(error.pid, int)
    for i, job in enumerate(others):
        kind, _, _, _, value, _ = sink.outcome(job)
        assert kind == SUCCEEDED, value
        assert isinstance(value, tuple)
        assert value[0] == i
    assert sum(r[0] in TERMINAL for r in sink.reports) == 9


def test_a_job_that_kills_its_worker_at_once_still_fails(backend: tuple[DaskBackend, Sink]) -> None:
    b, sink = backend
    job = make_job(jobs.crash)
    b.submit(job)
    kind, _, _, _, _, error = sink.outcome(job)
    assert kind == FAILED
    assert isinstance(error, WorkerCrashedError)


def test_initializer_runs_in_every_worker() -> None:
    b = DaskBackend(2, initializer=jobs.remember, initargs=("hello",))
    with started(b) as sink:
        chunk = [make_job(jobs.initialized) for _ in range(4)]
        for job in chunk:
            b.submit(job)
        for job in chunk:
            assert sink.outcome(job)[::4][:2] == (SUCCEEDED, ["hello"])
        assert not [r for r in sink.reports if r[0] == BROKEN]


def test_failing_initializer_breaks_the_backend() -> None:
    b = DaskBackend(1, initializer=jobs.refuse, initargs=("x",))
    with started(b) as sink:
        job = make_job(jobs.double, 1)
        b.submit(job)
        kind, _, _, _, _, error = sink.outcome(job)
        assert kind == FAILED
        assert isinstance(error, InitializerError)
        broken = [r for r in sink.reports if r[0] == BROKEN]
        assert len(broken) == 1
        assert isinstance(broken[0][5], InitializerError)
        assert "initializer refuses x" in str(broken[0][5])


def test_unreachable_address_fails_fast_with_a_clear_error() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(DaskConnectionError, match=address) as info:
        DaskBackend(2, address=address, connect_timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value, TaskpoolError)


def test_an_existing_client_is_used_and_left_open() -> None:
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        b = DaskBackend(7, address=client)
        assert b.workers == 2  # the cluster's worker threads, not the number asked for
        with started(b) as sink:
            job = make_job(jobs.double, 5)
            b.submit(job)
            assert sink.outcome(job)[::4][:2] == (SUCCEEDED, 10)
        assert client.status == "running"
        assert client.submit(jobs.double, 1).result(timeout=TIMEOUT) == 2
    finally:
        client.close(timeout=10)
        cluster.close(timeout=10)


def test_a_cluster_with_other_versions_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mismatched packages (Dask's own check) and a worker without our taskpool: a clear error, at once."""
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        real = client.get_versions

        def mismatched(check: bool = False, packages: Any = None) -> Any:
            raise ValueError("Mismatched versions found: msgpack 1.0 on the scheduler, 1.1 here")

        monkeypatch.setattr(client, "get_versions", mismatched)
        t0 = time.monotonic()
        with pytest.raises(taskpool.TaskpoolError, match="runs package versions that differ"):
            DaskBackend(2, address=client)
        assert time.monotonic() - t0 < TIMEOUT

        def without_taskpool(check: bool = False, packages: Any = None) -> Any:
            # Whatever this test environment has installed, the client has taskpool and the worker has not,
            # under the name the backend asks Dask about.
            versions = real(check=check, packages=packages)
            versions["client"]["packages"][dask_cluster.DISTRIBUTION] = taskpool.__version__
            for info in versions["workers"].values():
                info["packages"][dask_cluster.DISTRIBUTION] = None
            return versions

        monkeypatch.setattr(client, "get_versions", without_taskpool)
        with pytest.raises(taskpool.TaskpoolError, match="has taskpool not installed"):
            DaskBackend(2, address=client)
        assert client.status == "running"  # a client we were given is left open
    finally:
        client.close(timeout=10)
        cluster.close(timeout=10)


def test_without_distributed_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dask_cluster, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'taskpool-py\[dask\]'"):
        DaskBackend(2)


def test_shutdown_without_wait_is_bounded_with_jobs_running() -> None:
    b = DaskBackend(2)
    sink = Sink()
    b.start(sink)
    for _ in range(4):
        b.submit(make_job(jobs.nap, 5.0))
    time.sleep(0.5)
    t0 = time.monotonic()
    b.shutdown(wait=False)
    assert time.monotonic() - t0 < SHUTDOWN_BOUND


def test_errors_pickle() -> None:
    import pickle

    error = DaskConnectionError("tcp://h:1", "went away", "job")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DaskConnectionError
    assert str(copy) == str(error)


# -- through the pool ---------------------------------------------------------------------------------------
@pytest.fixture
def pool() -> Iterator[taskpool.TaskPool]:
    p = taskpool.TaskPool(2, backend="dask")
    try:
        yield p
    finally:
        t0 = time.monotonic()
        p.terminate()
        assert time.monotonic() - t0 < SHUTDOWN_BOUND


def test_pool_submit_map_imap_and_callbacks(pool: taskpool.TaskPool) -> None:
    assert pool.backend == "dask"
    assert pool.submit(jobs.add, 1, b=2).result(timeout=TIMEOUT) == 3
    assert pool.map(jobs.double, range(20)) == [2 * i for i in range(20)]
    assert list(pool.imap(jobs.double, range(5))) == [0, 2, 4, 6, 8]
    assert sorted(pool.imap_unordered(jobs.double, range(5), chunksize=2)) == [0, 2, 4, 6, 8]
    assert pool.starmap(jobs.add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.submit(lambda: "lambda").result(timeout=TIMEOUT) == "lambda"

    seen: list[Any] = []
    done = threading.Event()
    main = threading.get_ident()

    def callback(value: Any) -> None:
        seen.append((value, threading.get_ident() != main))
        done.set()

    pool.apply_async(jobs.double, (4,), callback=callback).get(timeout=TIMEOUT)
    assert done.wait(TIMEOUT)
    assert seen == [(8, True)]
    errors: list[BaseException] = []
    pool.apply_async(jobs.fail, (3,), error_callback=errors.append).wait(TIMEOUT)
    assert len(errors) == 1
    assert isinstance(errors[0], jobs.JobError)


def test_pool_exceptions_timeouts_and_shared(pool: taskpool.TaskPool) -> None:
    future = pool.submit(jobs.fail, 5)
    with pytest.raises(jobs.JobError) as info:
        future.result(timeout=TIMEOUT)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    with pytest.raises(JobTimeoutError):
        pool.options(timeout=0.5).submit(jobs.nap, 3.0).result(timeout=TIMEOUT)
    with pytest.raises(TaskpoolError, match="Lock"):
        pool.shared.dict()


def test_pool_retries_a_crashed_job(pool: taskpool.TaskPool) -> None:
    future = pool.options(retry=Retry(attempts=2, on_crash=True)).submit(jobs.nap_then_crash, 0.2)
    with pytest.raises(WorkerCrashedError):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 2
    assert pool.submit(jobs.double, 2).result(timeout=TIMEOUT) == 4


# -- a cluster of separate processes ------------------------------------------------------------------------
def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_" + argv[0], *argv[1:]],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that cleanup can kill the process with all its children
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_separate_processes_killed_worker_and_lost_scheduler(tmp_path: Path) -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            tmp_path / "s.log",
        )
    ]
    try:
        for i in range(2):
            processes.append(
                _start(
                    [
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    tmp_path / f"w{i}.log",
                )
            )
        with distributed.Client(address, timeout=TIMEOUT, set_as_default=False) as probe:
            probe.wait_for_workers(2, timeout=TIMEOUT)

        pool = taskpool.TaskPool(backend="dask", address=address)
        try:
            assert pool.workers == 2
            assert pool.map(jobs.double, range(40), chunksize=4) == [2 * i for i in range(40)]
            assert pool.submit(lambda: "by value").result(timeout=TIMEOUT) == "by value"
            outcomes: dict[int, list[str]] = {}
            lock = threading.Lock()

            def count(event: taskpool.Event) -> None:
                assert event.job_id is not None
                with lock:
                    outcomes.setdefault(event.job_id, []).append(event.kind)

            pool.on("job_succeeded", count)
            pool.on("job_failed", count)
            victim = processes[2]
            futures = [pool.submit(jobs.nap_then_pid, i, 0.1) for i in range(30)]
            cf.wait(futures[:6], timeout=TIMEOUT)
            _kill(victim)
            _done, pending = cf.wait(futures, timeout=TIMEOUT)
            assert not pending
            for i, future in enumerate(futures):
                error = future.exception(0)
                if error is None:
                    assert future.result(0)[0] == i
                else:
                    assert isinstance(error, WorkerCrashedError), error
            # Events are emitted on the event thread before futures complete: all are in by now.
            assert sorted(outcomes) == sorted(f.job_id for f in futures)
            assert all(len(kinds) == 1 for kinds in outcomes.values()), outcomes
            assert any(f.result(0)[1] != victim.pid for f in futures if f.exception(0) is None)

            # Now the scheduler goes away with jobs on the cluster: they fail, clearly and soon.
            stranded = [pool.submit(jobs.nap, 5.0) for _ in range(2)]
            time.sleep(0.3)
            t0 = time.monotonic()
            _kill(processes[0])
            for lost in stranded:
                assert isinstance(lost.exception(timeout=TIMEOUT), DaskConnectionError)
            assert time.monotonic() - t0 < 15
        finally:
            t0 = time.monotonic()
            pool.terminate()
            assert time.monotonic() - t0 < SHUTDOWN_BOUND
    finally:
        for process in processes:
            _kill(process)
