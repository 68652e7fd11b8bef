"""`ReadGate`: the scheduler stops reading results while the pool's event thread lags behind.

When the backlog of reports the event thread has not handled passes its bound (see
`taskpool._core.backlog`), the scheduler takes the workers' results pipes out of its selector: a worker that
keeps writing then blocks on its full pipe, so a job that logs or prints faster than the parent's handlers take
is slowed down, and nothing is dropped. Once the backlog is back under half its bound, the event thread wakes the
scheduler and the pipes are read again. A worker's death is still seen at once (its pidfd or sentinel stays in
the selector), and what it wrote is read then, gate or not.

Runs in the scheduler thread only, except the wake-up, which the event thread calls.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .handle import RESULTS, Worker

if TYPE_CHECKING:
    from ..._core.backlog import Backlog

__all__ = ["ReadGate"]


class ReadGate:
    """Which results pipes the scheduler does not read now, because the event thread lags behind."""

    def __init__(self, selector: selectors.BaseSelector, wake: Callable[[], object]) -> None:
        self._selector = selector
        self._wake = wake
        self._closed: set[Worker] = set()
        self._armed = False  # a wake-up is registered with the backlog for when it drains

    def update(self, backlog: Backlog | None, workers: Iterable[Worker]) -> None:
        """Close or reopen the gate for this round of the scheduler's loop."""
        if backlog is None:
            return
        if self._closed:
            if backlog.bytes <= backlog.low:
                self._reopen(workers)
                return
        elif backlog.over():
            self._close(workers)
        else:
            return
        # Closed: be woken when the backlog drains. Again after every wake-up while still closed, since
        # submitters may have filled it up again in between.
        if not self._armed:
            self._armed = True
            backlog.when_below(self._woken)

    def _woken(self) -> None:
        """The backlog drained (the event thread, or this thread when it already had)."""
        self._armed = False
        self._wake()

    def release(self, w: Worker) -> bool:
        """``w`` has ended: whether its results pipe was left unread by the gate (read it now, gate or not)."""
        if w in self._closed:
            self._closed.discard(w)
            return True
        return False

    def _close(self, workers: Iterable[Worker]) -> None:
        selector_map = self._selector.get_map()
        for w in workers:
            if w.reader.fd in selector_map:
                self._selector.unregister(w.reader.fd)
                self._closed.add(w)

    def _reopen(self, workers: Iterable[Worker]) -> None:
        alive = set(workers)
        for w in self._closed:
            if w in alive:
                self._selector.register(w.reader.fd, selectors.EVENT_READ, (RESULTS, w))
        self._closed.clear()
