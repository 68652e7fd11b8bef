"""`Pool`: a drop-in for `multiprocessing.Pool`, built on `TaskPool` (see `taskpool._compat.pool`)."""

from __future__ import annotations

from .pool import Pool
from .results import AsyncResult, MapResult

__all__ = ["AsyncResult", "MapResult", "Pool"]
