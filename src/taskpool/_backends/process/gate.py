"""`ReadGate`: the scheduler stops reading results while the pool's event thread lags behind.

When the backlog of reports the event thread has not handled passes its bound (see
`taskpool._core.backlog`), the scheduler takes the workers' results pipes, and their stdout and stderr pipes,
out of its selector: a worker that keeps writing then blocks on its full pipe, so a job that logs or prints
faster than the parent's handlers take is slowed down, and nothing is dropped. Once the backlog is back under half its bound, the event thread wakes the
scheduler and the pipes are read again. A worker's death is still seen at once (its pidfd or sentinel stays in
the selector), and what it wrote is read then, gate or not.

Runs in the scheduler thread only, except the wake-up, which the event thread calls.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .handle import CAPTURE, RESULTS, Worker

if TYPE_CHECKING:
    from ..._core.backlog import Backlog

__all__ = ["ReadGate"]


class ReadGate:
    """Which results pipes the scheduler does not read now, because the event thread lags behind."""

    def __init__(self, selector: selectors.BaseSelector, wake: Callable[[], object]) -> None:
        self._selector = selector
        self._wake = wake
        # The pipes it took out of the selector, by worker: (descriptor, selector tag).
        self._closed: dict[Worker, list[tuple[int, int]]] = {}
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
        closed = self._closed.pop(w, ())
        return any(tag == RESULTS for _fd, tag in closed)

    def _close(self, workers: Iterable[Worker]) -> None:
        selector = self._selector
        selector_map = selector.get_map()
        for w in workers:
            fds = [(w.reader.fd, RESULTS)]
            if w.capture is not None:
                fds.extend((fd, CAPTURE) for fd in w.capture.live)
            closed = [(fd, tag) for fd, tag in fds if fd in selector_map]
            for fd, _tag in closed:
                selector.unregister(fd)
            if closed:
                self._closed[w] = closed

    def _reopen(self, workers: Iterable[Worker]) -> None:
        alive = set(workers)
        for w, closed in self._closed.items():
            if w not in alive:
                continue
            live = w.capture.live if w.capture is not None else ()
            for fd, tag in closed:
                if tag == RESULTS or fd in live:  # a stdout pipe may have reached its end meanwhile
                    self._selector.register(fd, selectors.EVENT_READ, (tag, w))
        self._closed.clear()
