"""Run a command in a pseudo-terminal and read back the screen it leaves, as a person at a terminal sees it.

Used by the tests that check that a progress bar and other output never share a line. Runs in the test's
process: `run_in_pty` forks a child whose stdin, stdout and stderr are the terminal, and reads it to the end.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import termios
import time

__all__ = ["run_in_pty", "screen_lines", "torn_lines"]

_COLUMNS = 120
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(
    argv: list[str], env: dict[str, str], cwd: str, timeout: float, typed: bytes = b""
) -> tuple[str, int]:
    """Run ``argv`` with a pseudo-terminal as its stdin, stdout and stderr; return what it wrote and its status.

    ``typed`` is typed at the terminal (``b"\\x04"`` is Ctrl-D: end of file for a program reading it).

    Raises:
        TimeoutError: it did not finish within ``timeout`` seconds (it is killed first).
    """
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            # A new pseudo-terminal is 0 columns wide, in which tqdm draws nothing: give it a real size.
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, _COLUMNS, 0, 0))
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    chunks: list[bytes] = []
    if typed:
        os.write(fd, typed)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)
                raise TimeoutError(f"{argv} did not finish within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace"), os.waitstatus_to_exitcode(status)


def screen_lines(text: str) -> list[str]:
    """The lines a terminal shows for ``text``: a carriage return goes back to the start of the line and what
    follows overwrites it; escape sequences are dropped."""
    lines = []
    for raw in _ESCAPE.sub("", text).split("\n"):
        line: list[str] = []
        column = 0
        for char in raw:
            if char == "\r":
                column = 0
                continue
            if column < len(line):
                line[column] = char
            else:
                line.append(char)
            column += 1
        lines.append("".join(line).rstrip())
    return lines


def torn_lines(text: str, bar_marker: str, other_markers: tuple[str, ...]) -> list[str]:
    """The screen lines of ``text`` that hold both a bar (``bar_marker``) and other output."""
    return [
        line
        for line in screen_lines(text)
        if bar_marker in line and any(marker in line for marker in other_markers)
    ]
