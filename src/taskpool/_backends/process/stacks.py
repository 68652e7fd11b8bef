"""Where a job was stuck: the worker's Python stacks, taken just before the scheduler kills it.

Runs in two places:

- Each worker process, main thread, before any job: `dump_stacks_on_signal` asks `faulthandler` to write
  every thread's stack to the worker's *stack pipe* (a pipe of its own: never fd 2, which may be captured)
  when `STACK_SIGNAL` arrives, and then to let the signal's default action end the process (``chain=True``).
  `faulthandler` does this from its C signal handler without taking the GIL, so it works while the job is
  stuck in a long C call that holds the GIL, or in a ``time.sleep``.
- The scheduler thread of the parent: `capture_stack` sends the signal and reads the pipe until the worker
  has died (the dump is complete: the process ends right after writing it) or `STACK_WAIT` has passed,
  whichever comes first; the caller then kills the worker as it always did. `where_stuck` reads the job's
  own thread out of the dump.

So a kill on timeout or ``stop()`` is late by the time the dump takes (well under a millisecond measured,
a job stuck in C code that holds the GIL included), and by `STACK_WAIT` at most: a worker whose job replaced
the signal's handler, or that the kernel holds in an uninterruptible wait, is killed then all the same.
Imports the standard library only (a worker imports this module).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import select
import signal
import time

__all__ = ["STACK_SIGNAL", "STACK_WAIT", "capture_stack", "dump_stacks_on_signal", "where_stuck"]

#: The signal that asks a worker for its stacks. Its default action ends the process, which is how the parent
#: knows that the dump is complete. A job that installs its own handler for it loses the capture, not the kill.
STACK_SIGNAL = signal.SIGUSR1
#: The longest the scheduler waits for a worker's stacks before it kills the worker anyway. Longer: a dump
#: of many threads on a loaded machine still arrives whole; shorter: a kill is never later than this.
STACK_WAIT = 0.05
#: How many of the job's innermost frames the error message shows.
WHERE_FRAMES = 3

_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<fn>.*)$')
_THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-fA-F]+")
# The frame of the worker's loop that calls a job: everything more recent in its thread is the job's.
_RUN_JOB = "_run_job"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dump_stacks_on_signal(fd: int) -> None:
    """Write every thread's stack to ``fd`` on `STACK_SIGNAL`, then end (worker, main thread, before jobs)."""
    with contextlib.suppress(AttributeError, ValueError, OSError, RuntimeError):
        # Under fork the parent's handler would be inherited: the default action is what ends the process.
        signal.signal(STACK_SIGNAL, signal.SIG_DFL)
        faulthandler.register(STACK_SIGNAL, file=fd, all_threads=True, chain=True)


def capture_stack(pid: int, stack_fd: int, death_fd: int, wait: float = STACK_WAIT) -> str | None:
    """Ask worker ``pid`` for its stacks and return them, or None (scheduler thread; at most ``wait`` s).

    ``stack_fd`` is the parent's non-blocking end of the worker's stack pipe, ``death_fd`` readable once the
    worker has ended (its pidfd or sentinel). The worker is not killed here: it ends by itself once it has
    written its stacks; the caller kills it (and its group) in any case.
    """
    _read_available(stack_fd)  # nothing should be there; what is would not be this dump
    try:
        os.kill(pid, STACK_SIGNAL)
    except OSError:
        return None
    deadline = time.monotonic() + wait
    poller = select.poll()
    poller.register(stack_fd, select.POLLIN)
    poller.register(death_fd, select.POLLIN)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            events = poller.poll(left * 1000)
        except InterruptedError:
            continue
        if not events:
            break
        dead = False
        for fd, _mask in events:
            if fd == stack_fd:
                data, eof = _read_available(stack_fd)
                chunks.append(data)
                dead = dead or eof
            else:
                dead = True
        if dead:
            chunks.append(_read_available(stack_fd)[0])  # what it wrote before it died
            break
    text = b"".join(chunks).decode("utf-8", "replace").strip("\n")
    return text + "\n" if text else None


def _read_available(fd: int) -> tuple[bytes, bool]:
    """What a non-blocking pipe holds now, and whether its writer closed it."""
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return b"".join(chunks), False
        except OSError:
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)


def where_stuck(stack: str | None, frames: int = WHERE_FRAMES) -> str | None:
    """The innermost frames of the job's thread in a `faulthandler` dump: ``"fn (file.py:3) <- caller (...)"``.

    The job's thread is the one whose stack holds the worker's call of the job; taskpool's own frames are
    left out. None when there is no such thread (the job had not started, or the dump is cut short).
    """
    if not stack:
        return None
    for block in _threads(stack):
        names = [fn for _, _, fn in block]
        if _RUN_JOB not in names:
            continue
        job_frames = [
            (file, line, fn)
            for file, line, fn in block[: names.index(_RUN_JOB)]
            if not os.path.abspath(file).startswith(_PACKAGE + os.sep)
        ]
        if not job_frames:
            return None
        return " <- ".join(
            f"{fn} ({os.path.basename(file)}:{line})" for file, line, fn in job_frames[:frames]
        )
    return None


def _threads(stack: str) -> list[list[tuple[str, str, str]]]:
    """The frames (file, line, function) of each thread of a dump, most recent first."""
    blocks: list[list[tuple[str, str, str]]] = []
    for text_line in stack.splitlines():
        if _THREAD.match(text_line):
            blocks.append([])
            continue
        match = _FRAME.match(text_line)
        if match and blocks:
            blocks[-1].append((match["file"], match["line"], match["fn"]))
    return blocks
