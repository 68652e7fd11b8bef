"""Retries decided in the parent: job errors, crashes and timeouts; one outcome per future, counted attempts.

Attempts are counted in a file the job appends to, so the count survives workers that crash or are killed.
Also here: bounded memory, with `imap` reading its input lazily and `max_pending` holding back `submit`.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import tenacity

from taskpool import Event, JobTimeoutError, Retry, TaskPool, WorkerCrashedError
from taskpool._pool.imap import IMAP_WINDOW_PER_WORKER

from .. import _failure_jobs as fj
from .. import jobs

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(40)

TIMEOUT = 20.0


def attempts_in(path: str) -> int:
    p = Path(path)
    return len(p.read_text().split()) if p.exists() else 0


class Recorder:
    """Collects events of some kinds and counts each future's done-callbacks (event thread)."""

    def __init__(self, pool: TaskPool, *kinds: Any) -> None:
        self.events: list[Event] = []
        self.done_calls: dict[int, int] = {}
        self._lock = threading.Lock()
        for kind in kinds:
            pool.on(kind, self.events.append)

    def watch(self, future: cf.Future[Any]) -> None:
        job_id: int = future.job_id  # type: ignore[attr-defined]
        self.done_calls[job_id] = 0

        def count(_: cf.Future[Any]) -> None:
            with self._lock:
                self.done_calls[job_id] += 1

        future.add_done_callback(count)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


@pytest.fixture
def pool2() -> Iterator[TaskPool]:
    p = TaskPool(2)
    try:
        yield p
    finally:
        p.terminate()


def test_fails_twice_then_succeeds(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    rec = Recorder(pool2, "job_retrying", "job_failed", "job_succeeded")
    policy = Retry(attempts=3, on=(ConnectionError,), wait=0.05)
    future = pool2.options(retry=policy).submit(fj.fail_then_succeed, path, 2, "ok")
    rec.watch(future)
    assert future.result(timeout=TIMEOUT) == "ok"
    pool2.close()
    assert pool2.join(TIMEOUT)
    assert future.attempts == 3
    assert attempts_in(path) == 3
    retrying = rec.of("job_retrying")
    assert [e.attempt for e in retrying] == [1, 2]
    assert all(isinstance(e.exception, ConnectionError) for e in retrying)
    assert all(e.delay == pytest.approx(0.05) for e in retrying)
    assert [e.kind for e in rec.events] == ["job_retrying", "job_retrying", "job_succeeded"]
    assert rec.done_calls == {future.job_id: 1}


def test_gives_up_after_the_last_attempt(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    rec = Recorder(pool2, "job_retrying", "job_failed")
    errors: list[BaseException] = []
    future = pool2.options(retry=Retry(attempts=3, on=(ConnectionError,))).apply_async(
        fj.fail_then_succeed, (path, 10, "never"), error_callback=errors.append
    )
    rec.watch(future)
    with pytest.raises(ConnectionError, match="attempt 3 failed"):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 3
    assert attempts_in(path) == 3
    assert len(errors) == 1  # the error callback runs once, with the final outcome
    assert [e.kind for e in rec.events] == ["job_retrying", "job_retrying", "job_failed"]
    assert rec.done_calls == {future.job_id: 1}


def test_non_retryable_exception_is_not_retried(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    rec = Recorder(pool2, "job_retrying", "job_failed")
    future = pool2.options(retry=Retry(attempts=5, on=(ConnectionError,))).submit(
        fj.raise_key_error_counted, path
    )
    with pytest.raises(KeyError):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 1
    assert attempts_in(path) == 1
    assert [e.kind for e in rec.events] == ["job_failed"]


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_on_crash_retries_a_crashed_job(start_method: str, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    with TaskPool(2, start_method=start_method, retry=Retry(attempts=3, on_crash=True)) as pool:
        rec = Recorder(pool, "job_retrying")
        future = pool.submit(fj.crash_then_succeed, path, 2, 42)
        assert future.result(timeout=TIMEOUT) == 42
        assert future.attempts == 3
        assert all(isinstance(e.exception, WorkerCrashedError) for e in rec.of("job_retrying"))
        assert len(rec.of("job_retrying")) == 2
    assert attempts_in(path) == 3


def test_crash_is_not_retried_without_on_crash(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    future = pool2.options(retry=Retry(attempts=3)).submit(fj.crash_then_succeed, path, 1, 42)
    with pytest.raises(WorkerCrashedError):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 1
    assert attempts_in(path) == 1


def test_on_timeout_retries_a_timed_out_job(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    rec = Recorder(pool2, "job_retrying")
    view = pool2.options(timeout=0.3, retry=Retry(attempts=2, on_timeout=True))
    future = view.submit(fj.hang_then_succeed, path, 1, "second time lucky")
    assert future.result(timeout=TIMEOUT) == "second time lucky"
    assert future.attempts == 2
    assert attempts_in(path) == 2
    assert [type(e.exception) for e in rec.events] == [JobTimeoutError]


def test_timeout_is_not_retried_without_on_timeout(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    view = pool2.options(timeout=0.3, retry=Retry(attempts=3, on=(TimeoutError,)))
    future = view.submit(fj.hang_then_succeed, path, 1, "x")
    with pytest.raises(JobTimeoutError):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 1


def test_tenacity_wait_and_stop_strategies(pool2: TaskPool, tmp_path: Path) -> None:
    path = str(tmp_path / "attempts")
    rec = Recorder(pool2, "job_retrying")
    policy = Retry(
        attempts=None,
        on=(ConnectionError,),
        wait=tenacity.wait_fixed(0.02) + tenacity.wait_fixed(0.01),
        stop=tenacity.stop_after_attempt(4),
    )
    future = pool2.options(retry=policy).submit(fj.fail_then_succeed, path, 10, "never")
    with pytest.raises(ConnectionError):
        future.result(timeout=TIMEOUT)
    assert future.attempts == 4
    assert attempts_in(path) == 4
    assert [e.delay for e in rec.events] == pytest.approx([0.03, 0.03, 0.03])


def test_pool_default_retry_and_map(tmp_path: Path) -> None:
    """A pool-wide policy applies to every job, map chunks included."""
    with TaskPool(2, retry=Retry(attempts=2, on=(ConnectionError,))) as pool:
        paths = [str(tmp_path / f"a{i}") for i in range(4)]
        futures = [pool.submit(fj.fail_then_succeed, p, 1, i) for i, p in enumerate(paths)]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [0, 1, 2, 3]
        assert [f.attempts for f in futures] == [2, 2, 2, 2]


def test_stop_during_the_wait_before_a_retry(pool2: TaskPool, tmp_path: Path) -> None:
    """A job stopped between attempts ends cancelled and never runs again."""
    path = str(tmp_path / "attempts")
    retrying = threading.Event()
    pool2.on("job_retrying", lambda e: retrying.set())
    policy = Retry(attempts=3, on=(ConnectionError,), wait=3.0)
    future = pool2.options(retry=policy).submit(fj.fail_then_succeed, path, 1, "x")
    assert retrying.wait(TIMEOUT)
    assert future.stop()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=TIMEOUT)
    pool2.close()
    assert pool2.join(TIMEOUT)
    assert attempts_in(path) == 1


# -- bounded memory --------------------------------------------------------------------------------------
class CountingInput:
    """An endless input that records how many items have been taken from it (caller's thread)."""

    def __init__(self) -> None:
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for i in itertools.count():
            self.taken = i + 1
            yield i


@pytest.mark.parametrize("ordered", [True, False], ids=["imap", "imap_unordered"])
def test_imap_reads_its_input_lazily(pool2: TaskPool, ordered: bool) -> None:
    source = CountingInput()
    imap = pool2.imap if ordered else pool2.imap_unordered
    results = imap(jobs.square, source)
    taken = [next(results) for _ in range(10)]
    if ordered:
        assert taken == [x * x for x in range(10)]
    else:
        assert len(set(taken)) == 10
    before = source.taken
    bound = (
        pool2.workers * IMAP_WINDOW_PER_WORKER + 20
    )  # the in-flight window, and the items consumed
    assert before <= bound
    # While the consumer holds back, nothing more is read, however long it waits.
    pool2.submit(jobs.square, 0).result(timeout=TIMEOUT)
    assert source.taken == before
    assert next(results) is not None
    assert source.taken <= bound + 1
    pool2.terminate()


def test_max_pending_blocks_a_producer(tmp_path: Path) -> None:
    with TaskPool(2, max_pending=3) as pool:
        go = pool.shared.event()
        futures = [pool.submit(fj.wait_then_return, go, i) for i in range(3)]
        submitted = threading.Event()
        extra: list[cf.Future[Any]] = []

        def producer() -> None:
            extra.append(pool.submit(jobs.square, 7))
            submitted.set()

        thread = threading.Thread(target=producer, name="producer")
        thread.start()
        # The fourth submit must still wait: three jobs are pending and none can finish before `go`.
        assert not submitted.wait(0.5)
        go.set()
        assert submitted.wait(TIMEOUT)
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert [f.result(timeout=TIMEOUT) for f in futures] == [0, 1, 2]
        assert extra[0].result(timeout=TIMEOUT) == 49
