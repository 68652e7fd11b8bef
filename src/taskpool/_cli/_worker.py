"""What the jobs of ``taskpool run`` execute in the workers: call the user's function, encode its result as JSON.

`_call_one` (one input per job) and `_call_chunk` (several) run in worker processes (or the threads of the
thread backend, the caller with the inline backend, a Dask worker). They encode each result as JSON where it
was computed, so that a result JSON cannot encode fails that input alone. The main thread of ``taskpool run``
uses `error_record` and `Envelope` to turn what comes back into output lines.

Workers import this module for every job's function, by reference, so it stays light: the standard library
(``json``), `taskpool._runtime` and `taskpool._errors` only, never argparse or the rest of the command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .._runtime.attempt import JobKind, call, format_traceback

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._runtime.seeding import SeedKey

__all__ = [
    "Call",
    "Envelope",
    "ResultNotJSONError",
    "call_chunk",
    "call_one",
    "encode",
    "error_record",
]

#: One call of a chunk: its positional and keyword arguments.
Call = tuple[tuple[Any, ...], dict[str, Any]]

#: What `call_chunk` returns per input: ``(True, JSON text of the result)`` or ``(False, an error record)``.
Envelope = tuple[bool, Any]

# The frames a traceback of `call_chunk` starts with that are taskpool's, not the user's: its own and `call`'s.
_OWN_FRAMES = 2


class ResultNotJSONError(TypeError):
    """A job's result cannot be written as JSON (raised in the worker, so that only that input fails)."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"the result (of type {type_name}) is not JSON-serializable: {reason}. Return JSON types "
            "(dict, list, str, int, float, bool, None), e.g. convert with .tolist() or str()"
        )

    def __reduce__(self) -> tuple[type[ResultNotJSONError], tuple[str, str]]:
        return (type(self), (self.type_name, self.reason))


def encode(result: Any) -> str:
    """The JSON text of a result (runs in a worker); NaN and infinities are refused, as JSON has none.

    Raises:
        ResultNotJSONError: the result is not made of JSON types, or is too deeply nested.
    """
    try:
        return json.dumps(result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ResultNotJSONError(type(result).__qualname__, str(exc)) from None


def error_record(exc: BaseException, tb: str | None) -> dict[str, Any]:
    """The ``"error"`` member of an output line: the exception's type name, message and traceback text."""
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tb}


def call_one(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seed: SeedKey | None = None,
) -> str:
    """Run ``fn(*args, **kwargs)`` and return its result as JSON text (runs in a worker).

    ``seed``: the input's `SeedKey` (``--seed``). Its exceptions propagate, so the pool's `Retry` sees them.
    """
    return encode(call(fn, JobKind.CALL, args, kwargs, seed))


def call_chunk(
    fn: Callable[..., Any],
    calls: list[Call],
    attempts: int,
    seeds: list[SeedKey] | None = None,
) -> list[Envelope]:
    """Run ``fn`` on each call of a chunk, each in isolation (runs in a worker).

    A call that raises is tried again here, up to ``attempts`` times in all, since the pool's retry would
    rerun the whole chunk; a result JSON cannot encode is not retried (it would fail the same way).
    ``seeds``: each call's `SeedKey` (``--seed``); a retry runs with the same.
    """
    out: list[Envelope] = []
    own_frames = _OWN_FRAMES if seeds is None else _OWN_FRAMES + 1  # and the seeded call's
    for n, (args, kwargs) in enumerate(calls):
        seed = None if seeds is None else seeds[n]
        for attempt in range(1, attempts + 1):
            try:
                out.append((True, encode(call(fn, JobKind.CALL, args, kwargs, seed))))
                break
            except ResultNotJSONError as exc:
                out.append((False, error_record(exc, None)))
                break
            except Exception as exc:
                if attempt == attempts:
                    # From the user's function down: taskpool's frames above it are no help to them.
                    out.append((False, error_record(exc, format_traceback(exc, skip=own_frames))))
    return out
