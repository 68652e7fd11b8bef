"""A worker's standard output and error, captured at the file-descriptor level.

Runs in a worker process, in its main thread (`redirect` once at start, `StdioFlusher.__call__` after each job).

The parent gives each worker two pipes (see `capture`, which reads their other ends in the scheduler thread).
`redirect` puts their write ends on file descriptors 1 and 2 (``dup2``), so everything the worker writes there
reaches the parent: Python's ``print``, C code's ``printf``/``fwrite``, ``os.write(1, ...)``, faulthandler's
dumps, and the processes its jobs start, which inherit the descriptors. ``sys.stdout`` and ``sys.stderr``
become line-buffered text streams on them, with a working ``fileno()``, so
``subprocess.run(..., stdout=sys.stdout)`` and ``faulthandler.enable()`` work in jobs and initializers.

After each job the worker calls `StdioFlusher`: the Python streams' unfinished line, if one was written, and
C stdio's buffers (``fflush(NULL)``: C stdio buffers fully when its output is a pipe) go into the pipes
before the job's outcome is sent, so the parent, which reads the pipes before it handles the outcome, prints
them first. It makes no system call when nothing is buffered.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["StdioFlusher", "redirect"]


class _Buffer(io.BufferedWriter):
    """The binary layer under a worker's ``sys.stdout``/``sys.stderr`` (what ``.buffer`` writes go to); knows
    whether anything may wait in it."""

    dirty = False

    def write(self, b: Any) -> int:
        self.dirty = True
        return super().write(b)


class _Stream(io.TextIOWrapper):
    """``sys.stdout``/``sys.stderr`` of a worker: line-buffered UTF-8 text on a descriptor; knows whether an
    unfinished line may wait in it, so that the flush after a job is skipped when nothing can."""

    dirty = False

    def write(self, s: str) -> int:
        self.dirty = True
        return super().write(s)


def _c_fflush() -> Callable[[Any], object] | None:
    """libc's ``fflush``, or None where ctypes cannot reach the C library."""
    try:
        fflush = ctypes.CDLL(None).fflush
    except (OSError, AttributeError, TypeError):
        return None
    fflush.argtypes = [ctypes.c_void_p]
    fflush.restype = ctypes.c_int
    return fflush


class StdioFlusher:
    """Pushes what a job left in the worker's output buffers into the capture pipes (main thread, per job)."""

    __slots__ = ("_fflush", "_streams")

    def __init__(self, streams: list[tuple[_Stream, _Buffer]]) -> None:
        self._streams = tuple(streams)
        self._fflush = _c_fflush()

    def __call__(self) -> None:
        for stream, buffer in self._streams:
            if stream.dirty or buffer.dirty:
                stream.dirty = buffer.dirty = False
                # OSError, ValueError: the parent is gone, or a job closed the stream.
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
        if self._fflush is not None:
            self._fflush(None)


def _install(conn: Connection, target: int, keep: Collection[int]) -> int:
    """Put the write end ``conn`` on descriptor ``target``; return the descriptor that now writes to it."""
    fd = os.dup(conn.fileno())
    conn.close()
    if target in keep:
        # The parent ran with ``target`` closed, so one of the worker's own pipes took it: leave it, and
        # capture what Python writes only.
        return fd
    if fd != target:
        os.dup2(fd, target)  # inheritable: the processes a job starts write here too
        os.close(fd)
    else:
        os.set_inheritable(fd, True)
    return target


def redirect(out: Connection, err: Connection, keep: Collection[int]) -> StdioFlusher:
    """Make the write ends ``out`` and ``err`` the worker's descriptors 1 and 2, and ``sys.stdout``/``stderr``.

    ``keep`` are the descriptors the worker needs for itself (its jobs and results pipes, its lifeline),
    never overwritten. What the old streams buffered goes where they wrote before.
    """
    for old in (sys.stdout, sys.stderr):
        if old is not None:
            with contextlib.suppress(Exception):
                old.flush()
    streams = []
    for conn, target in ((out, 1), (err, 2)):
        fd = _install(conn, target, keep)
        buffer = _Buffer(io.FileIO(fd, "w", closefd=False))
        # Never fail a job for what it prints: what does not encode is written as escapes.
        text = _Stream(buffer, encoding="utf-8", errors="backslashreplace", line_buffering=True)
        streams.append((text, buffer))
    # sys.__stdout__ and sys.__stderr__ stay as they were: they write to descriptors 1 and 2 as well, and
    # dropping them would close those descriptors.
    sys.stdout, sys.stderr = streams[0][0], streams[1][0]
    return StdioFlusher(streams)
