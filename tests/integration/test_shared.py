"""SharedState (``pool.shared``): every factory across a process boundary, atomic updates, lifetime, security.

Runs under every start method the platform has. Until TaskPool exists, workers are a ``Pool(1)`` (proxies
travel as pickled task arguments) or plain ``Process`` objects (proxies travel as spawn arguments). No test
sleeps to order events: order comes from barriers, events, queues and joins, each with a timeout.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import signal
import socket
import stat
import sys
import threading
import time
from multiprocessing.connection import Client
from typing import TYPE_CHECKING, Any, cast

import pytest

from taskpool._errors import PoolClosedError
from taskpool._shared import SharedState

from . import _shared_jobs as jobs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
    from multiprocessing.pool import Pool

    from taskpool._shared import SharedDict

    # The contexts of the start methods under test; each has a Process class (Context's stub has none).
    Context = ForkContext | ForkServerContext | SpawnContext

START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]

# Seconds a single blocking call may take; generous so that a slow CI machine does not flake.
TIMEOUT = jobs.TIMEOUT
# shutdown() promises about its timeout argument plus one second.
SHUTDOWN_TIMEOUT = 5.0
SHUTDOWN_BOUND = SHUTDOWN_TIMEOUT + 2.0
# Increments per process in the atomicity tests: enough for the two processes to overlap for a while.
ITERATIONS = 400

has_af_unix = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(socket, "AF_UNIX"), reason="needs Unix domain sockets"
)


@pytest.fixture(params=START_METHODS)
def ctx(request: pytest.FixtureRequest) -> Context:
    return cast("Context", multiprocessing.get_context(request.param))


@pytest.fixture
def shared(ctx: Context) -> Iterator[SharedState]:
    state = SharedState(ctx)
    yield state
    started = time.monotonic()
    state.shutdown(timeout=SHUTDOWN_TIMEOUT)
    assert time.monotonic() - started < SHUTDOWN_BOUND
    assert multiprocessing.active_children() == []


@pytest.fixture
def worker(ctx: Context) -> Iterator[Pool]:
    pool = ctx.Pool(1)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def run_processes(ctx: Context, target: Callable[..., object], *args: Any, count: int = 2) -> None:
    """Run ``target(*args)`` in ``count`` fresh processes at once; fail unless each exits cleanly in time."""
    processes = [ctx.Process(target=target, args=args) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(TIMEOUT)
            assert process.exitcode == 0
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(TIMEOUT)


# -- lifetime ------------------------------------------------------------------------------------------------


def test_nothing_starts_before_first_use(ctx: Context) -> None:
    state = SharedState(ctx)
    assert not state.started
    assert state.pid is None
    assert state.address is None
    assert multiprocessing.active_children() == []
    started = time.monotonic()
    state.shutdown()
    assert time.monotonic() - started < 1.0
    assert state.closed
    with pytest.raises(PoolClosedError):
        state.dict()


def test_first_use_starts_one_server(ctx: Context) -> None:
    state = SharedState(ctx)
    start = threading.Barrier(4)
    pids: list[int | None] = []

    def first_use() -> None:
        start.wait(TIMEOUT)
        state.counter()
        pids.append(state.pid)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive()
        assert state.started
        assert len(pids) == 4
        assert len(set(pids)) == 1
        assert [p.pid for p in multiprocessing.active_children()] == pids[:1]
    finally:
        state.shutdown()


def test_shutdown_is_idempotent_and_bounded(ctx: Context) -> None:
    state = SharedState(ctx)
    state.counter()
    address = state.address
    assert address is not None
    started = time.monotonic()
    state.shutdown(timeout=SHUTDOWN_TIMEOUT)
    assert time.monotonic() - started < SHUTDOWN_BOUND
    assert multiprocessing.active_children() == []
    assert not state.started
    assert state.pid is None
    started = time.monotonic()
    state.shutdown()
    assert time.monotonic() - started < 1.0
    if sys.platform != "win32":
        assert not os.path.exists(os.path.dirname(address))


def test_dropped_without_shutdown_stops_the_server(ctx: Context) -> None:
    """Garbage collection (or interpreter exit) stops the server gracefully; it removes its directory itself."""
    state = SharedState(ctx)
    state.counter().add()
    address = state.address
    assert address is not None
    del state
    gc.collect()
    assert multiprocessing.active_children() == []
    if sys.platform != "win32":
        assert not os.path.exists(os.path.dirname(address))


def test_use_after_shutdown_raises_pool_closed_promptly(ctx: Context) -> None:
    state = SharedState(ctx)
    state.dict()
    state.shutdown()
    factories: list[Callable[[], object]] = [
        state.dict,
        state.list,
        state.namespace,
        state.lock,
        state.rlock,
        lambda: state.semaphore(2),
        state.event,
        lambda: state.barrier(2),
        state.queue,
        lambda: state.value("i", 1),
        lambda: state.array("i", [1]),
        state.counter,
    ]
    for factory in factories:
        started = time.monotonic()
        with pytest.raises(PoolClosedError):
            factory()
        assert time.monotonic() - started < 1.0


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux)")
def test_server_exits_when_its_parent_is_killed(ctx: Context) -> None:
    method = ctx.get_start_method()
    ours, theirs = ctx.Pipe()
    parent = ctx.Process(target=jobs.own_shared_state, args=(theirs, method))
    parent.start()
    theirs.close()
    try:
        assert ours.poll(TIMEOUT)
        pid, address = ours.recv()
        # Opened before the kill, so the pid cannot be reused under us.
        pidfd = os.pidfd_open(pid)
        try:
            os.kill(parent.pid or 0, signal.SIGKILL)
            parent.join(TIMEOUT)
            assert parent.exitcode == -signal.SIGKILL
            # A pidfd becomes readable when its process exits.
            readable, _, _ = select.select([pidfd], [], [], TIMEOUT)
            if not readable:
                os.kill(pid, signal.SIGKILL)  # do not leave an orphan behind a failed test
            assert readable == [pidfd]
        finally:
            os.close(pidfd)
        # The watchdog removes the private directory before it exits.
        assert not os.path.exists(os.path.dirname(address))
    finally:
        ours.close()
        if parent.is_alive():
            parent.kill()
            parent.join(TIMEOUT)


# -- security ------------------------------------------------------------------------------------------------


@has_af_unix
def test_server_listens_on_a_unix_socket_in_a_private_directory(shared: SharedState) -> None:
    shared.counter()
    address = shared.address
    assert address is not None
    assert stat.S_ISSOCK(os.stat(address).st_mode)
    directory = os.stat(os.path.dirname(address))
    assert stat.S_IMODE(directory.st_mode) == 0o700
    assert directory.st_uid == os.getuid()


@has_af_unix
def test_server_refuses_a_wrong_authkey(shared: SharedState) -> None:
    shared.counter()
    address = shared.address
    assert address is not None
    with pytest.raises(multiprocessing.AuthenticationError):
        Client(address, authkey=os.urandom(32))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads signal masks from /proc")
def test_server_ignores_sigint(shared: SharedState) -> None:
    counter = shared.counter()
    pid = shared.pid
    assert pid is not None
    with open(f"/proc/{pid}/status") as status:
        ignored = next(line for line in status if line.startswith("SigIgn:"))
    assert int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1))
    os.kill(pid, signal.SIGINT)
    assert counter.add() == 1  # still serving


# -- atomic updates ------------------------------------------------------------------------------------------


def test_concurrent_increment_loses_nothing(shared: SharedState, ctx: Context) -> None:
    d: SharedDict[str, int] = shared.dict()
    start = shared.barrier(2)
    run_processes(ctx, jobs.increment_many, d, "n", ITERATIONS, start)
    assert d["n"] == 2 * ITERATIONS


def test_concurrent_counter_add_loses_nothing(shared: SharedState, ctx: Context) -> None:
    counter = shared.counter()
    start = shared.barrier(2)
    run_processes(ctx, jobs.add_many, counter, ITERATIONS, start)
    assert counter.get() == 2 * ITERATIONS
    assert counter.value == 2 * ITERATIONS


def test_augmented_assignment_is_two_round_trips(
    shared: SharedState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``d[k] += 1`` is a get and then a set: another process can write in between, so updates can be lost.

    Whether they are lost on a given run depends on timing, so this shows the two round trips rather than a
    lost update; ``increment`` is a single call that the server runs under a lock.
    """
    d: SharedDict[str, int] = shared.dict({"k": 0})
    calls: list[str] = []
    real = d._callmethod

    def spy(method: str, args: tuple[Any, ...] = (), kwds: dict[Any, Any] | None = None) -> Any:
        calls.append(method)
        call: Callable[..., Any] = real
        return call(method, args, kwds or {})

    monkeypatch.setattr(d, "_callmethod", spy)
    d["k"] += 1
    assert calls == ["__getitem__", "__setitem__"]
    calls.clear()
    assert d.increment("k") == 2
    assert calls == ["increment"]


def test_counter_add_returns_the_new_value(shared: SharedState, worker: Pool) -> None:
    counter = shared.counter(5)
    assert counter.add() == 6
    assert counter.add(4) == 10
    assert worker.apply_async(jobs.counter_add, (counter, 5)).get(TIMEOUT) == 15
    assert counter.get() == 15
    counter.set(0)
    assert counter.value == 0


def test_increment_counts_a_missing_key_as_zero(shared: SharedState) -> None:
    d: SharedDict[str, float] = shared.dict()
    assert d.increment("a") == 1
    assert d.increment("a", 5) == 6
    assert d.increment("b", 0.5) == 0.5


# -- every factory through a worker --------------------------------------------------------------------------


def test_dict(shared: SharedState, worker: Pool) -> None:
    d: SharedDict[str, int] = shared.dict({"from_parent": 1})
    seen = worker.apply_async(jobs.dict_round_trip, (d,)).get(TIMEOUT)
    expected = {"from_parent": 1, "from_worker": 2, "hits": 1, "updated": 7}
    assert seen == expected
    assert d.copy() == expected
    assert len(d) == 4
    assert "hits" in d
    assert "missing" not in d
    assert sorted(d) == sorted(expected)
    assert sorted(d.keys()) == sorted(expected)
    assert sorted(d.items()) == sorted(expected.items())
    assert sorted(d.values()) == sorted(expected.values())
    assert d.get("missing") is None
    assert d.get("missing", 3) == 3
    assert d.setdefault("new", 4) == 4
    assert d.pop("new") == 4
    assert d.pop("new", -1) == -1
    d.update([("a", 1)], b=2)
    assert (d["a"], d["b"]) == (1, 2)
    del d["a"]
    with pytest.raises(KeyError):
        d["a"]
    d.clear()
    assert d.copy() == {}
    assert d == {}


def test_list(shared: SharedState, worker: Pool) -> None:
    items = shared.list([1, 2, 3])
    assert worker.apply_async(jobs.list_round_trip, (items,)).get(TIMEOUT) == [1, 2, 3, 101, 7, 8]
    assert items.copy() == [1, 2, 3, 101, 7, 8]
    assert items[1:3] == [2, 3]
    assert items[-1] == 8
    items[0:2] = [10, 20]
    items += [9]
    assert list(items) == [10, 20, 3, 101, 7, 8, 9]
    assert items.pop() == 9
    assert items.index(101) == 3
    assert items.count(7) == 1
    items.sort(reverse=True)
    assert items.copy() == [101, 20, 10, 8, 7, 3]
    del items[0]
    items.remove(3)
    items.insert(0, 1)
    assert items.copy() == [1, 20, 10, 8, 7]
    assert 20 in items
    assert len(items) == 5


def test_namespace(shared: SharedState, worker: Pool) -> None:
    ns = shared.namespace(from_parent=21)
    assert worker.apply_async(jobs.namespace_round_trip, (ns,)).get(TIMEOUT) == 21
    assert ns.from_worker == 42
    ns.other = "x"
    assert ns.other == "x"
    del ns.other
    with pytest.raises(AttributeError):
        ns.other  # noqa: B018


def test_lock(shared: SharedState, worker: Pool) -> None:
    lock = shared.lock()
    assert lock.acquire(timeout=TIMEOUT)
    assert worker.apply_async(jobs.try_acquire, (lock,)).get(TIMEOUT) is False
    lock.release()
    assert worker.apply_async(jobs.acquire_and_release, (lock,)).get(TIMEOUT) is True
    with lock:
        assert lock.acquire(blocking=False) is False


def test_rlock(shared: SharedState, worker: Pool) -> None:
    rlock = shared.rlock()
    assert rlock.acquire(timeout=TIMEOUT)
    assert rlock.acquire(timeout=TIMEOUT)  # reentrant for the thread that holds it
    assert worker.apply_async(jobs.try_acquire, (rlock,)).get(TIMEOUT) is False
    rlock.release()
    rlock.release()
    assert worker.apply_async(jobs.acquire_and_release, (rlock,)).get(TIMEOUT) is True


def test_semaphore(shared: SharedState, worker: Pool) -> None:
    semaphore = shared.semaphore(2)
    assert worker.apply_async(jobs.count_slots, (semaphore, 5)).get(TIMEOUT) == 2
    assert semaphore.acquire(timeout=TIMEOUT)
    assert worker.apply_async(jobs.count_slots, (semaphore, 5)).get(TIMEOUT) == 1
    semaphore.release()


def test_event(shared: SharedState, worker: Pool) -> None:
    event = shared.event()
    assert not event.is_set()
    worker.apply_async(jobs.set_event, (event,)).get(TIMEOUT)
    assert event.wait(TIMEOUT)
    event.clear()
    assert worker.apply_async(jobs.wait_event, (event, 0.0)).get(TIMEOUT) is False
    event.set()
    assert worker.apply_async(jobs.wait_event, (event, TIMEOUT)).get(TIMEOUT) is True


def test_barrier(shared: SharedState, worker: Pool) -> None:
    barrier = shared.barrier(2)
    assert barrier.parties == 2
    assert not barrier.broken
    theirs = worker.apply_async(jobs.wait_barrier, (barrier,))
    ours = barrier.wait(TIMEOUT)
    assert {ours, theirs.get(TIMEOUT)} == {0, 1}
    assert barrier.n_waiting == 0


def test_queue(shared: SharedState, worker: Pool) -> None:
    inbox = shared.queue()
    outbox = shared.queue(maxsize=3)
    for item in (1, 2, 3):
        inbox.put(item, timeout=TIMEOUT)
    assert worker.apply_async(jobs.double_items, (inbox, outbox, 3)).get(TIMEOUT) == "empty"
    assert outbox.full()
    assert [outbox.get(timeout=TIMEOUT) for _ in range(3)] == [2, 4, 6]
    assert outbox.empty()
    assert outbox.qsize() == 0


def test_value(shared: SharedState, worker: Pool) -> None:
    value = shared.value("i", 5)
    assert worker.apply_async(jobs.bump_value, (value,)).get(TIMEOUT) == 6
    assert value.value == 6
    value.set(1)
    assert value.get() == 1


def test_array(shared: SharedState, worker: Pool) -> None:
    values = shared.array("d", [1.0, 2.0, 3.0])
    assert worker.apply_async(jobs.scale_array, (values, 2.0)).get(TIMEOUT) == [2.0, 4.0, 6.0]
    assert values.tolist() == [2.0, 4.0, 6.0]
    assert values[1:] == [4.0, 6.0]
    values[0:2] = [0.5, 0.25]
    assert list(values) == [0.5, 0.25, 6.0]
    assert len(values) == 3
    with pytest.raises(TypeError):
        values[0] = "not a float"  # type: ignore[call-overload]


def test_proxy_stored_inside_another_shared_object(shared: SharedState, worker: Pool) -> None:
    counters: SharedDict[str, Any] = shared.dict()
    counters["c"] = shared.counter()
    assert worker.apply_async(jobs.counter_add, (counters["c"], 3)).get(TIMEOUT) == 3
    assert counters["c"].get() == 3


# -- a server that is gone --------------------------------------------------------------------------------


def test_a_killed_shared_state_server_is_noticed_everywhere_and_the_pool_goes_on(
    start_method: str, caplog: pytest.LogCaptureFixture
) -> None:
    from taskpool import SharedStateGoneError, TaskPool

    with TaskPool(2, start_method=start_method) as pool:
        counter = pool.shared.counter()
        assert pool.submit(jobs.counter_add, counter, 2).result(timeout=TIMEOUT) == 2
        pid = pool.shared.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _wait_until(lambda: not pool.shared.started)
        with pytest.raises(SharedStateGoneError) as info:  # in the parent
            counter.add(1)
        assert isinstance(info.value.__cause__, (ConnectionError, EOFError))
        with pytest.raises(SharedStateGoneError):  # in a job
            pool.submit(jobs.counter_add, counter, 1).result(timeout=TIMEOUT)
        fresh = pool.shared.counter(5)  # the way on: a new server for new objects
        assert pool.submit(jobs.counter_add, fresh, 1).result(timeout=TIMEOUT) == 6
        assert pool.shared.started
        assert pool.shared.pid != pid
    assert "shared-state server" in caplog.text


def _wait_until(condition: Any, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)  # polls a process's death, which has no event to wait on
    return False
