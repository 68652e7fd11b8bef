"""The pickling policy: plain pickle where it works (fast, by reference), cloudpickle where it does not.

Functions defined in ``__main__`` go by value through cloudpickle, because a worker started with spawn or
forkserver may not be able to import the parent's ``__main__`` (an interactive session, a notebook, ``python
-c``). Everything else goes by reference with pickle protocol 5 first, and falls back to cloudpickle for lambdas,
closures and nested functions. Runs in whichever thread or process calls it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle

from ._errors import SerializationError

__all__ = ["dumps", "dumps_function", "loads"]

loads = pickle.loads


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def dumps(obj: Any, part: str, where: str, job: str | None = None) -> bytes:
    """Pickle ``obj``; raise `SerializationError` naming ``part``, ``where`` and ``job`` when it cannot be."""
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:
        pass  # plain pickle refuses lambdas, closures and local classes: cloudpickle can take them by value
    try:
        data: bytes = cloudpickle.dumps(obj, protocol=5)
    except Exception as exc:
        raise SerializationError(part, "pickle", where, job, _reason(exc)) from exc
    return data


def dumps_function(fn: Callable[..., Any], job: str | None = None) -> bytes:
    """Pickle a job's function (by value for ``__main__`` functions, else by reference when possible)."""
    if getattr(fn, "__module__", None) == "__main__":
        try:
            data: bytes = cloudpickle.dumps(fn, protocol=5)
        except Exception as exc:
            raise SerializationError("function", "pickle", "parent", job, _reason(exc)) from exc
        return data
    return dumps(fn, "function", "parent", job)


def loads_checked(data: Any, part: str, where: str, job: str | None = None) -> Any:
    """Unpickle ``data``; raise `SerializationError` naming the part that failed."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise SerializationError(part, "unpickle", where, job, _reason(exc)) from exc
