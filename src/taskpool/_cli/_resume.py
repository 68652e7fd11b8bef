"""``taskpool run --resume``: what an earlier run left in OUTPUT, and the set of inputs it finished.

`read_previous` runs in the main thread before the run starts; the reader thread then only reads the
`IndexSet` it returned (``in``), which nothing changes any more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .._core.indexset import IndexSet
from ._status import SHOWN_FAILURES, UsageError

__all__ = ["Previous", "parse_record", "read_previous"]


@dataclass(slots=True)
class Previous:
    """What an earlier run left in OUTPUT."""

    done: IndexSet
    ok: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    failed: int = 0
    torn: bool = False


def read_previous(path: str) -> Previous:
    """Read the records of an earlier run; truncate a torn last line away (main thread, before the run).

    Raises:
        UsageError: a line other than the last is not a result record: the file is not ours to append to.
    """
    previous = Previous(IndexSet())
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below; truncation needs the open handle
    except FileNotFoundError:
        return previous
    except OSError as exc:
        raise UsageError(f"cannot read {path} to resume: {exc.strerror}") from None
    with f:
        good_end = 0
        bad: tuple[int, bytes] | None = None
        for lineno, raw in enumerate(f, 1):
            if bad is not None:
                # A bad line followed by more lines is damage, not a torn last write.
                raise UsageError(
                    f"line {bad[0]} of {path} is not a result record ({bad[1][:60]!r}); cannot resume "
                    "into it. Write to a new file, or repair or remove that line"
                )
            record = parse_record(raw) if raw.endswith(b"\n") else None
            if record is None:
                bad = (lineno, raw)
                continue
            index, ok, error = record
            previous.done.add(index)
            if ok:
                previous.ok += 1
            else:
                previous.failed += 1
                if len(previous.failures) < SHOWN_FAILURES:
                    previous.failures.append((index, error))
            good_end += len(raw)
        if bad is not None:
            # The previous run was killed in the middle of writing its last line: drop it; it is redone.
            f.truncate(good_end)
            previous.torn = True
    return previous


def parse_record(raw: bytes) -> tuple[int, bool, dict[str, Any]] | None:
    """``(index, ok, error record)`` of one output line, or ``None`` if it is not a result record."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    index, ok = record.get("index"), record.get("ok")
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or index < 0
        or not isinstance(ok, bool)
    ):
        return None
    error = record.get("error")
    return index, ok, error if isinstance(error, dict) else {}
