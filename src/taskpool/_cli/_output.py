"""Where ``taskpool run`` writes its records: opened without destroying anything, locked, written whole.

The safety rules, checked by `open_output` before anything on disk changes:

- an existing non-empty OUTPUT is continued with ``--resume`` or replaced with ``--overwrite``, never
  silently truncated;
- OUTPUT must not be the input (the same file however it is named: compared by device and inode);
- one run at a time writes an OUTPUT: the run holds an exclusive ``flock`` on it, and a second run that finds
  it held stops at once (where the platform has ``flock``).

`Output.write` writes whole batches of lines with ``os.write`` (or to the stdout stream), never leaving text
in a buffer: when the disk fills up, what reached the file is a prefix of the records, at worst with a torn
last line, which ``--resume`` drops and redoes.

Runs in the main thread of ``taskpool run``, its only writer.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import IO

from .._core.screen import past_bars
from ._status import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Output", "OutputError", "open_output"]


class OutputError(Exception):
    """Writing the output failed (a full disk, ...); the message says what happened."""


class Output:
    """The destination of the records: a file descriptor, or the stdout stream (main thread)."""

    def __init__(self, name: str, fd: int | None, stream: IO[str] | None) -> None:
        self.name = name  # for messages: the path, or "stdout"
        self._fd = fd
        self._stream = stream
        self.on_terminal = stream is not None and stream.isatty()

    def write(self, text: str) -> None:
        """Write ``text`` (whole lines) all the way to the file or the stream.

        Raises:
            OutputError: the file cannot take it (a full disk, ...).
            BrokenPipeError: the reader of stdout went away.
        """
        if not text:
            return
        if self._stream is not None:
            with past_bars():  # on a terminal, a record never lands on the progress bar's line
                self._stream.write(text)
                self._stream.flush()
            return
        assert self._fd is not None
        data = memoryview(text.encode("utf-8"))
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the file (and so release its lock); stdout stays open."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    # Regular files only: a terminal or a pipe can be both the input and the output.
    return stat.S_ISREG(a.st_mode) and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _input_stat(source: IO[bytes] | None) -> os.stat_result | None:
    if source is None:
        return None
    try:
        return os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's stand-in)
        return None


def open_output(
    path: str | None, *, resume: bool, overwrite: bool, source: IO[bytes] | None
) -> Output:
    """Open OUTPUT (``None`` or ``-``: stdout) by the safety rules of the module docstring (main thread).

    Args:
        path: the OUTPUT argument.
        resume: ``--resume``: an existing OUTPUT is continued (the caller reads it after this returns).
        overwrite: ``--overwrite``: an existing OUTPUT is emptied, once it is locked.
        source: the input stream, to refuse an OUTPUT that is the input; None with ``--range``.

    Raises:
        UsageError: a rule forbids the run, or OUTPUT cannot be opened; nothing on disk has changed.
    """
    if resume and overwrite:
        raise UsageError("give --resume or --overwrite, not both")
    source_stat = _input_stat(source)
    if path is None or path == "-":
        stdout = sys.stdout
        if stdout is None:
            raise UsageError("stdout is closed: give -o OUTPUT")
        out_stat = _input_stat(getattr(stdout, "buffer", None))
        if source_stat and out_stat and _same_file(source_stat, out_stat):
            raise UsageError("stdout is the input file: the records would overwrite the input")
        return Output("stdout", None, stdout)
    try:
        existing: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise UsageError(f"cannot write the output {path}: {exc.strerror}") from None
    if existing is not None:
        if source_stat is not None and _same_file(existing, source_stat):
            raise UsageError(
                f"the output {path} is the input file: write the records to another file"
            )
        if stat.S_ISREG(existing.st_mode) and existing.st_size and not (resume or overwrite):
            raise UsageError(
                f"the output {path} exists and is not empty: pass --resume to continue it, "
                "or --overwrite to replace it"
            )
    try:
        # No O_TRUNC: nothing is emptied before the lock is held.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError as exc:
        raise UsageError(f"cannot write the output {path}: {exc.strerror}") from None
    try:
        _lock(fd, path)
        if overwrite and stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return Output(path, fd, None)


def _lock(fd: int, path: str) -> None:
    """Hold an exclusive lock on OUTPUT until it is closed; refuse if another process holds one.

    Only a regular file: two runs writing to /dev/null, a terminal or a pipe overwrite nothing of each other's.
    """
    if fcntl is None:  # pragma: no cover - not on Windows
        return
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UsageError(
            f"the output {path} is locked by another process (another taskpool run writing it?): "
            "wait for it to finish, or write to another file"
        ) from None
    except OSError:
        pass  # a file system without flock (some network mounts): run unlocked, as before
