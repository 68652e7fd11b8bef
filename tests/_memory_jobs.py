"""Job functions and helpers for the memory tests: at module level, so that spawn and forkserver workers import
them. Each runs in a worker process unless its docstring says otherwise.
"""

from __future__ import annotations

from typing import Any


def make_bytes(n: int) -> bytes:
    """A result of ``n`` bytes (allocated zeroed: it costs the worker next to no memory until it is read)."""
    return bytes(n)


def length(data: Any) -> int:
    return len(data)
