"""How the ``taskpool`` command ends: its exit statuses and the error that stops it with a usage message.

Used by the main thread only (the reader thread hands its errors to the main thread instead of raising them).
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "PROG",
    "SHOWN_FAILURES",
    "UsageError",
]

PROG = "taskpool"

# How many failures the summary on stderr shows.
SHOWN_FAILURES = 5

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer in `... | head`
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class UsageError(Exception):
    """Bad arguments or unreadable input: the command stops with exit status 2 and this message."""
