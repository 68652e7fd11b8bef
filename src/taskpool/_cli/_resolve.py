"""``MODULE:FUNCTION``: the function that ``taskpool run`` calls, imported in the parent (main thread).

The pool's workers import it again there, by reference (module and name), when its first job arrives.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from ._status import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["resolve"]


def resolve(spec: str) -> Callable[..., Any]:
    """The function named by ``MODULE:FUNCTION`` (or ``path/to/file.py:FUNCTION``), imported in the parent.

    The current directory is put on ``sys.path`` first, as ``python -m`` does; the pool's workers get the
    same path, and the function travels to them by reference (module and name), so they import it too.

    Raises:
        UsageError: the spec is malformed, the module does not import, or the name is not a callable in it.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"expected MODULE:FUNCTION (e.g. taskpool.examples:collatz_steps), not {spec!r}"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    if module_name.endswith(".py"):
        path = os.path.abspath(module_name)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {module_name}")
        directory, module_name = os.path.split(path[:-3])
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UsageError(
                f"no module named {exc.name!r}. Run from the directory that holds it, add that directory "
                "to PYTHONPATH, or install its package"
            ) from None
        raise UsageError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        detail = "".join(traceback.format_exception(exc))
        raise UsageError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}\n{detail}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(
                f"module {module_name!r} has no attribute {attr!r}{_suggest(obj, part)}"
            ) from None
    if not callable(obj):
        kind = type(obj).__name__
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        raise UsageError(f"{spec} is {article} {kind}, not a function")
    return obj  # type: ignore[no-any-return]


def _suggest(owner: object, name: str) -> str:
    """``"; did you mean 'x'?"`` for the callables of ``owner`` closest to the misspelled ``name``."""
    names = []
    for candidate in dir(owner):
        try:
            if callable(getattr(owner, candidate)):
                names.append(candidate)
        except Exception:  # a lazy attribute that fails to load is no suggestion
            continue
    close = difflib.get_close_matches(name, names, n=3)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
