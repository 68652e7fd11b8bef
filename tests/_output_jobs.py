"""Jobs that write to their stdout and stderr below Python: descriptors, C stdio, child processes.

Module-level, so that every start method can import them in a worker.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A child process that writes one line to its stdout and one to its stderr, then exits.
_CHILD = "import sys; print('child-out-' + sys.argv[1]); print('child-err-' + sys.argv[1], file=sys.stderr)"

# A child process that outlives the job that started it: it waits (bounded) for the file argv[1] to exist,
# then writes ``late-line`` to its stdout (the worker's, inherited) and exits.
_LATE = """
import os, sys, time
deadline = time.monotonic() + 30
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.01)
print("late-line", flush=True)
"""

# A child process that leaves the worker's process group (so the worker's end does not kill it), keeps the
# worker's stdout and stderr open, and writes a line now and then until its pipe is gone or 30 s have passed.
_HOLDER = """
import sys, time
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    print("holder-line", flush=True)
    time.sleep(0.05)
"""


def write_every_way(tag: str) -> str:
    """Write one line each way below ``print``: descriptor 1, a child given ``sys.stdout``, the binary
    ``sys.stdout.buffer``, C stdio.

    Neither the binary line nor the C text (which has no newline) is flushed: they wait in their buffers
    until the worker flushes them after the job.
    """
    os.write(1, f"fd-{tag}\n".encode())
    subprocess.run(
        [sys.executable, "-c", _CHILD, tag],
        stdout=sys.stdout,
        stderr=sys.stderr,
        check=True,
        timeout=30,
    )
    sys.stdout.buffer.write(f"buffer-{tag}\n".encode())
    _c_write_buffered(f"printf-{tag}".encode())
    return tag


def _c_write_buffered(text: bytes) -> None:
    """Write ``text`` to descriptor 1 through a C stdio stream of its own, fully buffered (its output is a
    pipe) whatever the interpreter did to C's ``stdout`` (``PYTHONUNBUFFERED`` makes that unbuffered), and
    leave it there: only an ``fflush`` writes it. The stream is never closed (that would close descriptor 1).
    """
    libc = ctypes.CDLL(None)
    libc.fdopen.restype = ctypes.c_void_p
    libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    stream = libc.fdopen(1, b"w")
    assert stream, "fdopen(1) failed"
    libc.fputs(text, stream)


def write_lines_in_halves(tag: str, count: int) -> int:
    """Write ``count`` lines to descriptor 1, each in two ``os.write`` calls, so a torn line would show."""
    for i in range(count):
        line = f"{tag} {i} {'x' * 100}\n".encode()
        os.write(1, line[:50])
        os.write(1, line[50:])
    return count


def faulthandler_state() -> tuple[bool, int]:
    """Whether faulthandler is enabled in this worker, and the descriptor ``sys.stderr`` writes to."""
    return faulthandler.is_enabled(), sys.stderr.fileno()


def dump_traceback() -> int:
    """Have faulthandler write this thread's traceback to descriptor 2 (as it does on a crash)."""
    faulthandler.enable()
    faulthandler.dump_traceback(all_threads=False)
    return os.getpid()


def segfault_with_faulthandler() -> None:
    """Enable faulthandler, then die of SIGSEGV: its dump is the last thing this process writes."""
    faulthandler.enable()
    os.kill(os.getpid(), signal.SIGSEGV)


def start_late_writer(path: str) -> int:
    """Print ``early-line``, start a child that writes ``late-line`` once ``path`` exists, and return."""
    print("early-line", flush=True)
    return subprocess.Popen([sys.executable, "-c", _LATE, path]).pid


def hold_output_and_block(pid_file: str) -> None:
    """Start a child that leaves the worker's group and keeps its stdout; write ``"<child pid> <worker pid>"``
    to ``pid_file`` (whole, by a rename); then block."""
    child = subprocess.Popen([sys.executable, "-c", _HOLDER], start_new_session=True)
    Path(pid_file + ".part").write_text(f"{child.pid} {os.getpid()}", encoding="utf-8")
    os.rename(pid_file + ".part", pid_file)
    time.sleep(60)  # the test kills this worker long before


def identity(x: int) -> int:
    return x
