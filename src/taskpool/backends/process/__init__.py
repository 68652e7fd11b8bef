"""The process backend: jobs run in worker processes owned by one scheduler thread."""

from __future__ import annotations

from ._scheduler import ProcessBackend, default_start_method

__all__ = ["ProcessBackend", "default_start_method"]
