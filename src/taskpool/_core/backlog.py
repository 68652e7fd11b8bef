"""`Backlog`: what the event thread has been handed and not handled yet, in estimated bytes.

Reports, log records and printed lines wait in the event thread's queue while user handlers run. Without a
bound, a slow handler lets that queue grow as fast as workers produce: 100,000 tiny jobs behind a slow
handler, or a job that logs faster than the parent's handlers take, used to take hundreds of megabytes. With
this bound, producers wait instead once the backlog passes `HIGH_BYTES`, until it is back under half of it:
callers of `submit` wait, the thread backend's job threads wait before their next job, and the process
backend's scheduler stops reading results pipes (so a worker that writes faster than the parent handles blocks
on its full pipe: it is slowed down; nothing is dropped).

The estimate is deliberately rough: a fixed cost per report plus the size of the text or bytes it carries. Any
thread may call `add` and `over`; the event thread calls `done`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .reports import Report, ReportKind

__all__ = ["HIGH_BYTES", "Backlog", "estimate"]

#: Producers wait once the backlog is estimated above this many bytes, until it is back under half of it.
#: Larger: more slack for bursts before anyone waits; smaller: less memory held for slow handlers.
HIGH_BYTES = 32 * 2**20

# What one report costs beyond the text or bytes it carries: the tuple, the job's bookkeeping, a result's
# box. A guess on the high side, so that the bound holds for reports that carry nothing large.
_REPORT_COST = 256
# A log record's attributes besides its message.
_RECORD_COST = 512
_OUTPUT, _LOG = ReportKind.OUTPUT, ReportKind.LOG


def estimate(batch: list[Report]) -> int:
    """A rough size in bytes of a batch of reports (the calling thread; once per batch, a few checks per report).

    Never raises: a value it cannot size costs the fixed cost only.
    """
    cost = _REPORT_COST * len(batch)
    for kind, _job, _worker, _pid, value, _error in batch:
        if value is None:
            continue
        if kind == _OUTPUT:  # (stream, text)
            text = value[1] if isinstance(value, tuple) and len(value) == 2 else ""
            cost += len(text) if isinstance(text, str) else 0
        elif kind == _LOG:
            if isinstance(value, logging.LogRecord):
                cost += _RECORD_COST + len(value.exc_text or "")
                if isinstance(value.msg, str):  # prepared records carry their message as text
                    cost += len(value.msg)
        else:
            value_type = type(value)
            if value_type is bytes or value_type is str or value_type is bytearray:
                cost += len(value)  # type: ignore[arg-type]
    return cost


class Backlog:
    """The event thread's backlog in estimated bytes, and the wait for it to drain."""

    def __init__(self, high: int | None = None) -> None:
        self.high = HIGH_BYTES if high is None else high
        self.low = self.high // 2
        self.bytes = 0
        #: The largest backlog seen (for tests and diagnostics).
        self.peak = 0
        self._cond = threading.Condition(threading.Lock())
        self._on_low: list[Callable[[], object]] = []

    def add(self, n: int) -> None:
        """Count ``n`` more bytes handed to the event thread (any thread)."""
        with self._cond:
            self.bytes += n
            if self.bytes > self.peak:
                self.peak = self.bytes

    def done(self, n: int) -> None:
        """The event thread has handled ``n`` bytes' worth; wake whoever waits once under the low mark."""
        with self._cond:
            self.bytes -= n
            if self.bytes > self.low:
                return
            self._cond.notify_all()
            callbacks, self._on_low = self._on_low, []
        for fn in callbacks:
            fn()

    def over(self) -> bool:
        """Whether producers should wait now (a racy read: good enough for a bound)."""
        return self.bytes > self.high

    def wait_below(self, timeout: float | None = None) -> bool:
        """Block the calling thread until the backlog is under the low mark; returns whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: self.bytes <= self.low, timeout)

    def when_below(self, fn: Callable[[], object]) -> None:
        """Call ``fn`` once the backlog is under the low mark: now, or from the event thread later."""
        with self._cond:
            if self.bytes > self.low:
                self._on_low.append(fn)
                return
        fn()
