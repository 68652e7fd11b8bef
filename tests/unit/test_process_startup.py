"""The policy for failures to start a worker process, as pure functions (no process is started)."""

from __future__ import annotations

import errno
import os

from taskpool import WorkerStartError
from taskpool._backends.process.startup import (
    FIRST_PAUSE,
    LAST_PAUSE,
    SPAWN_ATTEMPTS,
    SpawnBackoff,
    main_guard_error,
)


def _emfile() -> OSError:
    return OSError(errno.EMFILE, os.strerror(errno.EMFILE))


def test_transient_errors_are_retried_with_growing_pauses_then_break() -> None:
    backoff = SpawnBackoff()
    pauses = []
    for _ in range(SPAWN_ATTEMPTS - 1):
        assert backoff.failed(_emfile(), 0.0) is None
        pauses.append(backoff.not_before)
    assert pauses[0] == FIRST_PAUSE
    assert pauses == sorted(pauses)
    assert max(pauses) <= LAST_PAUSE
    error = backoff.failed(_emfile(), 0.0)
    assert isinstance(error, WorkerStartError)
    assert f"failed {SPAWN_ATTEMPTS} times in a row" in str(error)
    assert "Too many open files" in str(error)


def test_a_start_ends_the_run_of_failures() -> None:
    backoff = SpawnBackoff()
    for _ in range(SPAWN_ATTEMPTS - 1):
        assert backoff.failed(OSError(errno.EAGAIN, "again"), 0.0) is None
    backoff.started()
    assert backoff.not_before == 0.0
    assert backoff.failed(OSError(errno.ENOMEM, "no memory"), 0.0) is None


def test_other_errors_break_at_once_saying_what_was_raised() -> None:
    error = SpawnBackoff().failed(TypeError("cannot pickle 'lock' object"), 0.0)
    assert isinstance(error, WorkerStartError)
    assert "raised TypeError: cannot pickle 'lock' object" in str(error)


def test_the_main_guard_error_names_the_guard() -> None:
    assert 'if __name__ == "__main__":' in str(main_guard_error())
