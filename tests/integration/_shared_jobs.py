"""Job functions for test_shared.py: module level, so workers started with spawn or forkserver can import them.

Each runs in a worker process and acts on proxies passed to it as arguments. Every blocking call takes a timeout.
"""

from __future__ import annotations

import multiprocessing
import queue
from typing import TYPE_CHECKING, Any

from taskpool._shared import SharedState

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from taskpool._shared import (
        SharedArray,
        SharedBarrier,
        SharedCounter,
        SharedDict,
        SharedEvent,
        SharedList,
        SharedLock,
        SharedNamespace,
        SharedQueue,
        SharedSemaphore,
        SharedValue,
    )

# Seconds any single blocking call in a job may wait; far above what a healthy run needs.
TIMEOUT = 20.0


def dict_round_trip(d: SharedDict[str, int]) -> dict[str, int]:
    """Read what the parent wrote, write back, and return what this worker sees."""
    d["from_worker"] = d["from_parent"] + 1
    d.increment("hits")
    d.update({"updated": 7})
    return d.copy()


def increment_many(d: SharedDict[str, int], key: str, times: int, start: SharedBarrier) -> None:
    """Increment ``d[key]`` ``times`` times, after every process is ready (so the increments overlap)."""
    start.wait(TIMEOUT)
    for _ in range(times):
        d.increment(key)


def add_many(counter: SharedCounter, times: int, start: SharedBarrier) -> None:
    """Add 1 to ``counter`` ``times`` times, after every process is ready."""
    start.wait(TIMEOUT)
    for _ in range(times):
        counter.add()


def counter_add(counter: SharedCounter, n: int) -> int:
    return counter.add(n)


def list_round_trip(items: SharedList[int]) -> list[int]:
    items.append(items[0] + 100)
    items.extend([7, 8])
    return items.copy()


def namespace_round_trip(ns: SharedNamespace) -> Any:
    ns.from_worker = ns.from_parent * 2
    return ns.from_parent


def try_acquire(lock: SharedLock) -> bool:
    """Try to take ``lock`` without waiting; release it again if that worked."""
    got = lock.acquire(blocking=False)
    if got:
        lock.release()
    return got


def acquire_and_release(lock: SharedLock) -> bool:
    got = lock.acquire(timeout=TIMEOUT)
    if got:
        lock.release()
    return got


def count_slots(semaphore: SharedSemaphore, limit: int) -> int:
    """Take as many slots as are free without waiting (up to ``limit``), give them back, return how many."""
    taken = 0
    while taken < limit and semaphore.acquire(blocking=False):
        taken += 1
    if taken:
        semaphore.release(taken)
    return taken


def set_event(event: SharedEvent) -> None:
    event.set()


def wait_event(event: SharedEvent, timeout: float) -> bool:
    return event.wait(timeout)


def wait_barrier(barrier: SharedBarrier) -> int:
    return barrier.wait(TIMEOUT)


def double_items(inbox: SharedQueue[int], outbox: SharedQueue[int], count: int) -> str:
    """Move ``count`` items from ``inbox`` to ``outbox``, doubled; then report that ``inbox`` is empty."""
    for _ in range(count):
        outbox.put(inbox.get(timeout=TIMEOUT) * 2, timeout=TIMEOUT)
    try:
        inbox.get_nowait()
    except queue.Empty:
        return "empty"
    return "not empty"


def bump_value(value: SharedValue[int]) -> int:
    value.value = value.value + 1  # a read and a write: fine here, only one process touches it
    return value.get()


def scale_array(values: SharedArray[float], factor: float) -> list[float]:
    for i in range(len(values)):
        values[i] = values[i] * factor
    return values.tolist()


def own_shared_state(conn: Connection, method: str) -> None:
    """Act as a pool's parent: start a server, report its pid and address, then wait to be killed.

    Runs in a child process of the test; the test kills it with SIGKILL, so no shutdown() ever runs here.
    """
    state = SharedState(multiprocessing.get_context(method))
    counter = state.counter()
    counter.add()
    conn.send((state.pid, state.address))
    conn.poll(
        TIMEOUT
    )  # returns when the test closes its end, or after TIMEOUT if the test went wrong
    state.shutdown()
