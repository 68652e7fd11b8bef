"""A preload module that fails to import, for the tests of ``TaskPool(preload=...)``."""

from __future__ import annotations

BROKEN = 1 / 0
