"""The event thread's backlog is bounded in bytes: producers wait instead of piling up reports.

A slow handler used to let reports and forwarded log records queue without bound (hundreds of megabytes for a
chatty job). Now a job that logs faster than the parent's handlers take is slowed down by its full pipe, and
submitters wait for the handlers; nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from taskpool import Event, TaskPool
from taskpool._core import backlog as backlog_module
from tests import jobs

TIMEOUT = 60.0
BOUND = 1 << 20  # a small bound, so that the tests run fast


@pytest.fixture(autouse=True)
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backlog_module, "HIGH_BYTES", BOUND)


class _SlowHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "tests.chatty.many":
            return
        self.count += 1
        time.sleep(
            0.0001
        )  # a slow handler (a remote log sink, say): the parent falls behind the job


def test_a_job_that_logs_faster_than_the_parent_handles_is_slowed_down_not_buffered(
    start_method: str,
) -> None:
    # On the root logger, which workers replace with the handler that forwards records to the parent.
    handler = _SlowHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with TaskPool(1, start_method=start_method) as pool:
            assert pool.submit(jobs.log_many, 10_000, 1000).result(timeout=TIMEOUT) == 10_000
            peak = pool._events.backlog.peak
    finally:
        root.removeHandler(handler)
    assert handler.count == 10_000  # slowed down, never dropped
    # Measured: about 2 MiB (the bound, plus what one round of reading a full pipe brings); the records
    # themselves come to about 15 MiB. The ceiling is generous for a loaded machine.
    assert peak <= 3 * (BOUND + (1 << 20)), peak


@pytest.mark.parametrize("backend", ["process", "thread"])
def test_submitters_wait_for_slow_handlers_instead_of_piling_up_events(backend: str) -> None:
    calls = 0
    lock = threading.Lock()

    def slow_handler(event: Event) -> None:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.00005)

    with TaskPool(2, backend=backend) as pool:
        pool.on("job_submitted", slow_handler)
        pool.on("job_succeeded", slow_handler)
        futures = [pool.submit(jobs.square, i) for i in range(10_000)]
        assert [f.result(timeout=TIMEOUT) for f in futures] == [i * i for i in range(10_000)]
        peak = pool._events.backlog.peak
    assert calls == 20_000
    # Measured: about the bound; 10,000 jobs' events come to about 5 MiB without it.
    assert peak <= 3 * (BOUND + (1 << 20)), peak
