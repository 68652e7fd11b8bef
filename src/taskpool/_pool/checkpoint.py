"""The checkpoint file of a map: the results of finished chunks, appended as they arrive, read back on a rerun.

Layout (little-endian)::

    magic       b"taskpool-checkpoint\\n"
    header      u32 length, u32 CRC32 of the text, then the text: JSON {"format", "function", "call"}
    records     each: u64 first, u32 count, u32 length, u32 CRC32 of the payload, u32 CRC32 of these 20
                bytes, then the payload: the pickled list of the ``count`` results of the items at positions
                ``first``, ``first + 1``, ... of the input

A record is written with one ``write`` to a file opened for appending, so a program killed at any moment
leaves every record whole but perhaps the last. Reading stops at the first record that is not whole: if it
is the end of the file (the record runs past it, or only zero bytes follow it, as a machine crash can leave
behind), it is a torn last record and is cut off; anywhere else the file is damaged, and nothing is dropped
silently. The file is fsynced when its header is written and when the map ends, not after each record: a
killed program loses nothing, and a machine crash loses at most the records since the last sync (those
items run again).

Threads: `Checkpoint.open` and `replay` run in the caller's thread; `add` runs where a chunk's future
completes (the pool's event thread, or the caller's thread for a future done already), under the
checkpoint's lock; `close` in either. One program at a time writes a file: it holds an exclusive ``flock``
on it (where the platform has ``flock``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
import struct
import threading
import zlib
from typing import Any, NamedTuple

from .._core.indexset import IndexSet
from .._errors import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Checkpoint", "Record"]

log = logging.getLogger("taskpool")

MAGIC = b"taskpool-checkpoint\n"
FORMAT = 1
_LENGTH = struct.Struct("<II")  # header text: length, CRC32
_HEAD = struct.Struct(
    "<QIIII"
)  # record: first, count, length, payload CRC32, CRC32 of the first 20 bytes
_READ = 1 << 20  # bytes read at a time while scanning
_PAST_END = "it runs past the end of the file"  # what a write cut short leaves: a torn last record


class Record(NamedTuple):
    """Where the results of one recorded chunk lie in the file."""

    items: int  # how many results it holds
    offset: int  # of its payload
    length: int
    crc: int


class Checkpoint:
    """One open checkpoint file (see the module docstring).

    Args:
        path: the file; made if missing.
        function: the qualified name of the map's function, which the file must have been written for.
        call: ``"map"`` (``fn(item)``) or ``"starmap"`` (``fn(*item)``).

    Raises:
        CheckpointError: the file is not a checkpoint, is for another function, is damaged before its last
            record, is held by another program, or cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str], function: str, call: str) -> None:
        self.path = os.fspath(path)
        self.records: dict[int, Record] = {}  # by the position of the first item
        self.covered = IndexSet()
        self.torn = False  # a torn last record was cut off
        self.error: CheckpointError | None = None  # a write that failed while the map ran
        self._lock = threading.Lock()
        self._meta = {"format": FORMAT, "function": function, "call": call}
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise self._error(f"cannot open it: {exc.strerror or exc}") from None
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                raise self._error(
                    "it is not a regular file (a checkpoint is read back at any position); give a file's path"
                )
            self._lock_file()
            self._load()
        except BaseException as exc:
            os.close(self._fd)
            self._fd = None
            if isinstance(exc, OSError):
                raise self._error(f"cannot read or start it: {exc.strerror or exc}") from None
            raise

    def _error(self, reason: str) -> CheckpointError:
        return CheckpointError(self.path, reason)

    def _lock_file(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise self._error(
                "another map, in this program or another, is writing it; wait for it to finish, or give "
                "this map another path"
            ) from None

    # -- reading (the caller's thread, before any job runs) ---------------------------------------------
    def _load(self) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        head = os.pread(self._fd, len(MAGIC) + _LENGTH.size, 0)
        if not head.startswith(MAGIC):
            if MAGIC.startswith(head):  # empty, or the header's write was cut short: start afresh
                self._start()
                return
            raise self._error(
                "it is not a taskpool checkpoint (it does not start as one). Give the map another path, "
                "or remove the file if it is not needed"
            )
        if len(head) < len(MAGIC) + _LENGTH.size:
            self._start()
            return
        length, crc = _LENGTH.unpack_from(head, len(MAGIC))
        start = len(head) + length
        if start > size:  # the header's write was cut short: nothing can follow it
            self._start()
            return
        text = os.pread(self._fd, length, len(head))
        if zlib.crc32(text) != crc:
            raise self._error(
                "its header is damaged; give the map another path, or remove the file"
            )
        meta = json.loads(text)
        if meta.get("format") != FORMAT:
            raise self._error(
                f"it has format {meta.get('format')!r}, which this version of taskpool does not read"
            )
        if (meta.get("function"), meta.get("call")) != (self._meta["function"], self._meta["call"]):
            raise self._error(
                f"it was written by {meta.get('call')}() of {meta.get('function')}, not by "
                f"{self._meta['call']}() of {self._meta['function']}; its results are not this call's. "
                "Give this call another path, or remove the file to start over"
            )
        self._scan(start, size)

    def _start(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        text = json.dumps(self._meta).encode()
        self._write(MAGIC + _LENGTH.pack(len(text), zlib.crc32(text)) + text)
        os.fsync(self._fd)

    def _scan(self, offset: int, size: int) -> None:
        """Index the records from ``offset``; cut a torn last record off."""
        assert self._fd is not None
        while offset < size:
            head = os.pread(self._fd, _HEAD.size, offset)
            problem = self._check_head(head)
            if problem is None:
                first, count, length, crc, _ = _HEAD.unpack(head)
                end = offset + _HEAD.size + length
                if end > size:
                    problem = _PAST_END
                elif zlib.crc32(os.pread(self._fd, length, offset + _HEAD.size)) != crc:
                    problem = "its results do not match their checksum"
                elif any(i in self.covered for i in range(first, first + count)):
                    problem = "it covers items recorded already"
            if problem is not None:
                if problem is _PAST_END or end_is_blank(self._fd, offset, size):
                    log.warning(
                        "checkpoint %s: dropped a torn last record (%s); its items run again",
                        self.path,
                        problem,
                    )
                    os.ftruncate(self._fd, offset)
                    self.torn = True
                    return
                raise self._error(
                    f"the record at byte {offset} is damaged ({problem}) and whole records follow it; "
                    "give the map another path, or remove the file to start over"
                )
            self.records[first] = Record(count, offset + _HEAD.size, length, crc)
            for i in range(first, first + count):
                self.covered.add(i)
            offset = end

    @staticmethod
    def _check_head(head: bytes) -> str | None:
        if len(head) < _HEAD.size:
            return _PAST_END
        _, count, _, _, crc = _HEAD.unpack(head)
        if zlib.crc32(head[:-4]) != crc:
            return "its header does not match its checksum"
        if count == 0:
            return "it has no results"
        return None

    def replay(self, first: int) -> list[Any]:
        """The results recorded for the chunk that starts at position ``first`` (the caller's thread).

        Raises:
            CheckpointError: the record changed since it was read, or its results do not unpickle here.
        """
        record = self.records[first]
        assert self._fd is not None
        payload = os.pread(self._fd, record.length, record.offset)
        if zlib.crc32(payload) != record.crc:
            raise self._error(f"the results of items {first}.. changed while the map ran")
        try:
            values: list[Any] = pickle.loads(payload)
        except Exception as exc:
            raise self._error(
                f"the recorded results of items {first}.. do not unpickle here: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return values

    # -- writing (where futures complete) ---------------------------------------------------------------
    def add(self, first: int, values: list[Any]) -> None:
        """Record the results of the chunk at position ``first`` (one ``write``; never raises).

        A result that does not pickle leaves its chunk unrecorded (it runs again next time); a failed write
        is kept in ``error``, which the map raises in the caller's thread.
        """
        try:
            payload = pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            log.warning(
                "checkpoint %s: the results of items %d.. are not recorded, they do not pickle: %s: %s",
                self.path,
                first,
                type(exc).__name__,
                exc,
            )
            return
        head = struct.pack("<QIII", first, len(values), len(payload), zlib.crc32(payload))
        data = head + struct.pack("<I", zlib.crc32(head)) + payload
        with self._lock:
            if self._fd is None or self.error is not None:
                return
            try:
                self._write(data)
            except OSError as exc:
                self.error = self._error(f"cannot write it: {exc.strerror or exc}")

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Sync the file to disk and close it (and so release its lock); closing twice does nothing."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            log.warning("checkpoint %s: cannot sync it: %s", self.path, exc.strerror or exc)
        finally:
            os.close(fd)


def end_is_blank(fd: int, offset: int, size: int) -> bool:
    """Whether the bytes of ``fd`` from ``offset`` to ``size`` are all zero (space a crash left unwritten)."""
    while offset < size:
        block = os.pread(fd, min(_READ, size - offset), offset)
        if not block or any(block):
            return not block
        offset += len(block)
    return True
