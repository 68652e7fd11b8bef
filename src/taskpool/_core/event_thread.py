"""`EventThread`: the one thread per pool that turns reports into outcomes.

It receives the backend's reports in the order the backend saw them, and requests of the pool's own (calls),
in one queue. It alone completes futures, runs ``apply_async`` callbacks and event handlers, and emits log
records and printed lines that workers sent, so those never run concurrently with each other, and for one job
they come in the order things happened. Delayed work (a retry after a wait) sits on its timer heap.

Nothing run here can end the thread: a failure of the pool's own handling is logged and the thread goes on
with the next item, since every future still pending depends on it.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TypeAlias

from .backlog import Backlog, estimate
from .reports import Report
from .timers import TimerHeap

__all__ = ["EventThread"]

log = logging.getLogger("taskpool")

#: What the queue holds: a batch of reports or a call of the pool's own with its estimated size, or None (stop).
_Item: TypeAlias = "tuple[list[Report] | Callable[[], object], int] | None"

# What a queued call of the pool's own (a job_submitted event) costs in the backlog.
_CALL_COST = 256


class EventThread:
    """The thread that turns reports into completed futures, callbacks and events (one per pool).

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str = "taskpool-events") -> None:
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._timers: TimerHeap[Callable[[], object]] = TimerHeap()
        #: What the queue holds and has not handled, in estimated bytes (see `taskpool._core.backlog`).
        self.backlog = Backlog()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._process: Callable[[list[Report]], None] = lambda reports: None
        # Calls that go ahead of everything queued (terminate): a deque, appended from any thread.
        self._urgent: collections.deque[Callable[[], object]] = collections.deque()

    def start(self, process: Callable[[list[Report]], None]) -> None:
        """Start the thread; it hands every batch of reports to ``process`` (once, by the pool's constructor)."""
        self._process = process
        self._thread.start()

    @property
    def ident(self) -> int | None:  # set once the thread has started
        """The thread's identifier (to refuse calls that would wait for this very thread)."""
        return self._thread.ident

    def put(self, batch: list[Report]) -> None:
        """The backend's sink: queue a batch of reports (any thread; never blocks, see `Backlog`)."""
        cost = estimate(batch)
        self.backlog.add(cost)
        self._queue.put((batch, cost))

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on this thread after every report queued before it (any thread)."""
        self.backlog.add(_CALL_COST)
        self._queue.put((fn, _CALL_COST))

    def call_urgent(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on this thread as soon as what it runs now returns, ahead of everything queued."""
        self._urgent.append(fn)
        self._queue.put(([], 0))  # wakes the thread if it waits for work

    def call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on this thread after ``delay`` seconds (event thread only)."""
        self._timers.push(time.monotonic() + delay, fn)

    def stop(self, timeout: float | None = None) -> None:
        """Handle what is queued, then end the thread (any thread; waits unless it is this thread)."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        get, timers, process, urgent = self._queue.get, self._timers, self._process, self._urgent
        while True:
            while urgent:
                _guarded(urgent.popleft())
            wait = timers.wait_time(time.monotonic())
            try:
                item = get() if wait is None else get(timeout=wait)
            except queue.Empty:
                item = ([], 0)
            if item is None:
                return
            work, cost = item
            if type(work) is list:
                if work:
                    _guarded(process, work)
            else:
                _guarded(work)  # type: ignore[arg-type]
            if cost:
                self.backlog.done(cost)
            del work
            for fn in timers.pop_due(time.monotonic()):
                _guarded(fn)
            # Hold no report while idle: it would keep the last jobs' arguments and results alive.
            del item


def _guarded(fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException:  # a bug in the pool's own handling: say so, keep serving the other jobs
        log.critical("taskpool's event thread failed to handle an outcome", exc_info=True)
