"""Job functions for the tests of worker start (the template, preload, thread limits); run in workers."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any


def parent_and_modules(*names: str) -> tuple[int, int, list[str]]:
    """This worker's pid, its parent's pid, and which of ``names`` are imported here."""
    return os.getpid(), os.getppid(), [name for name in names if name in sys.modules]


def thread_settings() -> dict[str, Any]:
    """The thread-count variables here, and the thread pools numpy's libraries run (threadpoolctl)."""
    import numpy  # noqa: F401 - loads the BLAS library whose pool is inspected
    from threadpoolctl import threadpool_info

    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
    return {
        "env": {name: os.environ.get(name) for name in names},
        "pools": {info["user_api"]: info["num_threads"] for info in threadpool_info()},
    }


def frozen_objects() -> tuple[int, bool]:
    """How many objects this worker holds out of the cyclic collector's sight (``gc.freeze``), and whether
    the collector runs here."""
    return gc.get_freeze_count(), gc.isenabled()
