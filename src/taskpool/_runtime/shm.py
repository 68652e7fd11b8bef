"""Anonymous shared memory: segments made with ``memfd_create`` (Linux), filled, mapped and read without names.

A segment is a file descriptor of an anonymous in-memory file. It has no name anywhere (nothing in
``/dev/shm``), so nothing has to clean it up: its memory is freed when the last descriptor to it is closed
and the last mapping of it is unmapped, which the kernel does for a process however it ends (SIGKILL
included). Descriptors travel between processes over a Unix socket (``SCM_RIGHTS``).

Where ``memfd_create`` is missing (macOS, other POSIX systems) or refused (a sandbox, no memory left), `create`
returns None and logs one warning on the ``taskpool`` logger for the life of the process; callers then send
their data through the pipe, as they did without shared memory.

Runs in whichever thread or process calls it: the scheduler thread and caller threads of the parent, and the
main and flusher threads of a worker. Imports the standard library only.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import sys
import threading
from typing import Any

__all__ = [
    "MAPPED_MAX",
    "PAGE",
    "create",
    "map_segment",
    "new_token",
    "probe",
    "read_into",
    "size_class",
    "supported",
    "warn_once",
    "write_all",
]

log = logging.getLogger("taskpool")

PAGE = mmap.PAGESIZE
# Linux moves at most this much per read or write call, whatever it is asked for.
_IO_MAX = 0x7FFFF000

_warned = threading.Event()

#: A new token, unique in this process, for a segment it sends or shares (``next`` on a count is atomic).
new_token = itertools.count(1).__next__


def supported() -> bool:
    """Whether this platform has anonymous memory files (``os.memfd_create``), looked up at call time."""
    return hasattr(os, "memfd_create")


def warn_once(reason: str) -> None:
    """Log, once per process, that large data goes through the pipe because shared memory cannot be had."""
    if not _warned.is_set():
        _warned.set()
        log.warning(
            "taskpool: shared memory is not available (%s); large arguments and results go through the pipe "
            "instead (slower, but the jobs run the same)",
            reason,
        )


def size_class(n: int) -> int:
    """The size of the segment that holds ``n`` bytes: a power of two, so that a segment is reused for data
    of any size up to it. Only the pages written to take memory, so the rounding costs address space only."""
    return 1 << max(n - 1, PAGE - 1).bit_length()


def create(size: int) -> int | None:
    """A new anonymous segment of ``size`` bytes (a descriptor, close-on-exec), or None (warned once).

    The file is sparse: its pages take memory when they are first written.
    """
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        warn_once("os.memfd_create is missing on this platform")
        return None
    try:
        fd: int = memfd_create("taskpool", getattr(os, "MFD_CLOEXEC", 1))
    except OSError as exc:
        warn_once(f"memfd_create failed: {exc}")
        return None
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        os.close(fd)
        warn_once(f"a {size}-byte segment could not be sized: {exc}")
        return None
    return fd


def probe() -> bool:
    """Whether a segment can be made here now (a one-page one, closed at once); warns once when not.

    A pool asks once, when it starts: where memfd is refused (a sandbox), it never tries again, and its
    workers, told to use the pipes, never warn in turn.
    """
    fd = create(PAGE)
    if fd is None:
        return False
    os.close(fd)
    return True


def write_all(fd: int, view: memoryview, offset: int = 0) -> None:
    """Copy ``view`` into segment ``fd`` at ``offset`` (one kernel copy; no mapping in this process).

    Raises:
        OSError: the memory could not be had (ENOSPC, ENOMEM); nothing is mapped, so nothing faults later.
    """
    view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    done, n = 0, view.nbytes
    while done < n:
        done += os.pwrite(fd, view[done : done + _IO_MAX], offset + done)


def read_into(fd: int, target: memoryview, offset: int = 0) -> None:
    """Copy the first ``target.nbytes`` bytes of segment ``fd`` (from ``offset``) into ``target``."""
    done, n = 0, target.nbytes
    while done < n:
        k = os.preadv(fd, [target[done : done + _IO_MAX]], offset + done)
        if k == 0:
            raise EOFError("a shared memory segment is shorter than its descriptor says")
        done += k


def map_segment(fd: int, nbytes: int, writable: bool = True, private: bool = False) -> Any:
    """Map ``nbytes`` of segment ``fd``, without copying.

    By default writes go to the segment itself (``MAP_SHARED``): for a segment this process holds alone until
    it gives it back, or one meant to be written by every process that maps it. ``private``: copy-on-write
    (``MAP_PRIVATE``), writes stay in this process and the segment keeps its contents. ``writable=False``
    maps it read-only, for a segment that many processes read.
    """
    prot = mmap.PROT_READ | mmap.PROT_WRITE if writable else mmap.PROT_READ
    flags = mmap.MAP_PRIVATE if private else mmap.MAP_SHARED
    return mmap.mmap(fd, nbytes, flags=flags, prot=prot, **_NO_FD)


#: Before Python 3.13, an ``mmap`` object keeps a duplicate of the descriptor it maps for as long as it lives
#: (``trackfd=False`` turns that off): callers bound how many mappings they keep (see `MAPPED_MAX`).
_NO_FD: dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}
#: How many live mappings a process keeps before it copies what it receives instead (Python < 3.13 only, where
#: each mapping holds a descriptor; well under the usual limit of 1024 descriptors per process).
MAPPED_MAX = 1 << 62 if _NO_FD else 512
