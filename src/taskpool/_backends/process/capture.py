"""`Capture`: the parent's ends of one worker's stdout and stderr pipes, and the lines read from them.

Runs in the scheduler thread only. A worker's descriptors 1 and 2 are the write ends of two pipes (see
`stdio`, the worker's half); the scheduler reads their other ends, non-blocking, whenever they are readable,
and turns what it reads into whole lines, each of which the event thread writes with one call, so that lines
of different workers never mix. Text is UTF-8; bytes that do not decode are shown as ``\\xNN`` escapes.

Why the parent reads them, not a thread in the worker: what a worker writes just before it dies (a
faulthandler dump on a segfault, a C library's last words) is still in the pipe after it died, and is
printed before the crash is reported; and a worker spends no system call per job on it.

The pipes are never used to see a worker end: a process the job started (and that left the worker's group)
may hold them open for ever. When the worker has ended, the scheduler reads what is there, once, and closes
its ends.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
from typing import TYPE_CHECKING

from ..._runtime.output import LineSplitter

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["STREAMS", "Capture"]

#: The streams in the order of a worker's descriptors 1 and 2: the names the parent prints them to.
STREAMS = ("stdout", "stderr")
# One read takes at most this much; a read that fills it is followed by another, up to _MAX_READS (one
# pipe's default capacity is 64 KiB, so a worker blocked on a full pipe is let go in one read).
_CHUNK = 65536
# Bounds the reads of one call: a process that writes without pause cannot hold the scheduler thread.
_MAX_READS = 16


class Capture:
    """One worker's stdout and stderr pipes as the scheduler reads them (scheduler thread only)."""

    __slots__ = ("_conns", "_decoders", "_lines", "_poll", "fds", "live")

    def __init__(self, out: Connection, err: Connection) -> None:
        self._conns = (out, err)
        #: The read ends, stdout's first.
        self.fds = (out.fileno(), err.fileno())
        #: The read ends not at end of file: those the scheduler watches.
        self.live = list(self.fds)
        # Which of them hold something now, in one system call: a read of an empty pipe would cost one
        # each, and an exception.
        self._poll = select.poll()
        for fd in self.fds:
            os.set_blocking(fd, False)
            self._poll.register(fd, select.POLLIN)
        decoder = codecs.getincrementaldecoder("utf-8")
        self._decoders = (decoder("backslashreplace"), decoder("backslashreplace"))
        self._lines = (LineSplitter(), LineSplitter())

    def read(self) -> tuple[list[tuple[str, str]], list[int]]:
        """Read what the pipes hold now: ``([(stream, whole lines)], descriptors found at end of file)``.

        An unfinished last line is kept for the next read, or for `rest`.
        """
        pieces: list[tuple[str, str]] = []
        ended: list[int] = []
        for fd, _events in self._poll.poll(0):
            i = self.fds.index(fd)
            data = b""
            for _ in range(_MAX_READS):
                try:
                    chunk = os.read(fd, _CHUNK)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    chunk = b""
                if not chunk:  # no process holds its write end any more
                    self.live.remove(fd)
                    self._poll.unregister(fd)
                    ended.append(fd)
                    break
                data += chunk
                if len(chunk) < _CHUNK:
                    break  # a pipe's read takes all it holds: it is empty now
            if data:
                lines = self._lines[i].feed(self._decoders[i].decode(data))
                if lines:
                    pieces.append((STREAMS[i], lines))
        return pieces, ended

    def has_rest(self) -> bool:
        """Whether an unfinished line waits (cheap: called once per frame of outcomes). Bytes of a character
        cut short, alone, do not count: they wait for the rest of it."""
        return self._lines[0].pending or self._lines[1].pending

    def rest(self) -> list[tuple[str, str]]:
        """The unfinished last lines, as they are (a job ended, or the worker did), and forget them."""
        pieces = []
        for i in (0, 1):
            # Bytes of a character cut short are shown as escapes rather than held for a later job.
            self._lines[i].feed(self._decoders[i].decode(b"", final=True))
            text = self._lines[i].rest()
            if text:
                pieces.append((STREAMS[i], text))
        return pieces

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self.live.clear()
