"""A worker's messages to the parent: batched, flushed by the main thread or within `FLUSH_INTERVAL`.

Runs in a worker process: `Outbox.add` and `RecordForwarder` in any thread of it (a job's threads may log),
the flushes in its main thread and its flusher thread. The `Outbox` lock serializes writes to the results
pipe within the process, and keeps the outcome ring (`ring`) in step with the frames written. With shared
memory (`segments`), large results are lent out of it as frames are written, and the segments of arguments
the worker no longer maps are released with the next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..._runtime.attempt import process_job
from ..._runtime.output import prepare_record
from .protocol import log_message, release_message, result_message, wrap, write_frame

if TYPE_CHECKING:
    from .ring import OutcomeRing
    from .segments import Link

__all__ = ["FLUSH_INTERVAL", "Outbox", "RecordForwarder"]

# How long messages (outcomes of finished jobs, start reports, log records, printed lines) may wait to be
# batched with later ones while the main thread is busy. Longer: fewer writes for tiny jobs; shorter: results
# (and the refill of this worker's queue) arrive sooner.
FLUSH_INTERVAL = 0.002


class Outbox:
    """Messages waiting to go to the parent. Any thread of the worker may add to it.

    The main thread flushes when it runs out of jobs; `arm` asks a helper thread to flush within
    FLUSH_INTERVAL, so that messages made while the main thread is busy in a long job still go out. The lock
    also keeps the outcome ring in step with the messages: a frame written clears exactly the entries of the
    outcomes it carried.
    """

    def __init__(self, fd: int, ring: OutcomeRing, link: Link | None = None) -> None:
        self.fd = fd
        self.ring = ring
        #: The shared memory path to the parent (large results out, large arguments in), if there is one.
        self.link = link
        self._lend = link.lend if link is not None else None
        self.messages: list[Any] = []
        self.lock = threading.Lock()
        self._armed = False
        self._wakeup = threading.Event()
        self._flusher: threading.Thread | None = None

    def flush(self) -> None:
        with self.lock:
            link = self.link
            if link is not None and link.released:
                # Segments of arguments this worker no longer maps: the parent may fill them again.
                self.messages.append(release_message(link.take_released()))
            if self.messages:
                messages, self.messages = self.messages, []
                write_frame(self.fd, messages, self._lend)
                self.ring.clear()

    def pending(self) -> bool:
        """Whether a flush would write something."""
        link = self.link
        return bool(self.messages) or (link is not None and bool(link.released))

    def release(self, tokens: tuple[int, ...]) -> None:
        """The parent no longer maps these result segments of ours: reuse them (main thread)."""
        if self.link is not None:
            with self.lock:  # the flusher thread may be lending from the same pool
                self.link.pool.release(tokens)

    def add(self, message: Any) -> None:
        with self.lock:
            self.messages.append(message)

    def add_result(
        self, job_id: int, ok: bool, payload: Any, tb: str | None, duration: float
    ) -> bool:
        """Add a job's outcome; returns whether it is safe from the worker's death (in the ring) already.

        When it returns False, the caller must `flush` before the job counts as finished.
        """
        small = type(payload) is bytes
        with self.lock:
            kept = small and self.ring.append(job_id, ok, payload, tb, duration)
            # What the ring took is small: no need to see whether it should travel out of band.
            out = payload if kept else wrap(payload) if small else payload
            self.messages.append(result_message(job_id, ok, out, tb, duration))
            return kept

    def arm(self) -> None:
        if not self._armed:
            self._armed = True
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_later, name="taskpool-flusher", daemon=True
                )
                self._flusher.start()
            self._wakeup.set()

    def _flush_later(self) -> None:
        while True:
            self._wakeup.wait()
            time.sleep(FLUSH_INTERVAL)  # the batching window, not a wait for some state
            self._wakeup.clear()
            self._armed = False
            try:
                self.flush()
            except OSError:
                return  # the parent is gone; the main thread will find out too

    def add_from_any_thread(self, message: Any) -> None:
        self.add(message)
        self.arm()


class RecordForwarder(logging.Handler):
    """Sends log records made in the worker to the parent, whole, tagged with the running job."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(logging.NOTSET)
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = prepare_record(record, *process_job)
        except Exception:
            self.handleError(record)
            return
        self._outbox.add_from_any_thread(log_message(process_job[0], data))
