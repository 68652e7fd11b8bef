"""The counts of a ``taskpool run`` and the summary it always ends with on stderr.

The summary is one line, whatever stderr is (a terminal, a file, a pipe), then the first failures::

    taskpool run: 99998 ok, 2 failed in 1.2 s -> collatz.jsonl
      index 7: ValueError: ...

Runs in the main thread of ``taskpool run``: it alone counts (as it writes the records) and prints.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ._status import PROG, SHOWN_FAILURES

if TYPE_CHECKING:
    from ._resume import Previous

__all__ = ["Tally", "print_summary"]


@dataclass(slots=True)
class Tally:
    """What this run wrote: how many records, and the first failures (index, error record)."""

    ok: int = 0
    failed: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add_failure(self, index: int, error: dict[str, Any]) -> None:
        """Count a failed record; keep it if it is among the first few."""
        self.failed += 1
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append((index, error))


def print_summary(
    tally: Tally,
    previous: Previous,
    seconds: float,
    destination: str,
    stderr: IO[str] | None,
    *,
    stopped: str | None = None,
) -> None:
    """Print the summary line, then the first failures (main thread).

    Args:
        tally: this run's counts.
        previous: what an earlier run left in OUTPUT (``--resume``).
        seconds: how long the run took.
        destination: the output's name (a path, or "stdout").
        stderr: where to print (None: stderr is closed; nothing is printed).
        stopped: why the run stopped before the end, with what to do next (None: it ran to the end).
    """
    if stderr is None:
        return
    head = f"{PROG} run: {tally.ok} ok, {tally.failed} failed in {seconds:.1f} s -> {destination}"
    if len(previous.done):
        head += (
            f" (and {len(previous.done)} kept from the earlier run, "
            f"{previous.failed} of them failed)"
        )
    if stopped is not None:
        head += f"; {stopped}"
    lines = [head]
    failed = tally.failed + previous.failed
    shown = (previous.failures + tally.failures)[:SHOWN_FAILURES]
    for index, error in shown:
        message = str(error.get("message") or "").splitlines()
        lines.append(
            f"  index {index}: {error.get('type', '?')}: {message[0] if message else ''}".rstrip()
        )
    if failed > len(shown):
        lines.append(f'  ... and {failed - len(shown)} more (lines with "ok": false)')
    with contextlib.suppress(OSError, ValueError):  # stderr is gone: there is nobody to tell
        print("\n".join(lines), file=stderr, flush=True)
