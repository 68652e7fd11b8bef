"""Keep a worker's native thread pools (BLAS, OpenMP, numexpr) to its share of the CPUs.

A pool of N workers on N CPUs whose jobs call numpy would otherwise run N BLAS thread pools of N threads each:
N² threads fighting for N CPUs. `limit_threads` runs in a worker process (its main thread), before the
preload modules, the initializer and any job:

- it sets each library's thread-count variable (`THREAD_VARIABLES`) that the worker's environment does not
  set already, so a library loaded from now on sizes its pool to the limit; a variable the user set is theirs;
- for a library loaded already (a preload module, a template's import, or the parent's under fork), the
  variables come too late: it imports threadpoolctl, on that path only (its import costs tens of ms), and
  limits those pools at run time, leaving alone the kind (BLAS or OpenMP) whose variable the user set.

Imports the standard library only; threadpoolctl on first use.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

__all__ = ["NATIVE_MODULES", "THREAD_VARIABLES", "limit_threads", "prepare"]

#: The variables that size native thread pools, with the kind threadpoolctl calls each library's API.
THREAD_VARIABLES = {
    "OMP_NUM_THREADS": "openmp",
    "OPENBLAS_NUM_THREADS": "blas",
    "MKL_NUM_THREADS": "blas",
    "VECLIB_MAXIMUM_THREADS": "blas",
    "NUMEXPR_NUM_THREADS": None,  # numexpr reads it when imported; threadpoolctl does not limit it
}
#: Modules that load a native thread pool: when one is imported already, the variables came too late.
NATIVE_MODULES = (
    "numpy",
    "scipy",
    "sklearn",
    "torch",
    "numexpr",
    "mkl",
    "tensorflow",
    "jax",
    "xgboost",
    "lightgbm",
    "cv2",
    "numba",
)


def limit_threads(limit: int) -> list[str]:
    """Limit this process's native thread pools to ``limit`` threads; returns the variables it set.

    Never raises: a library that cannot be limited keeps its own size.
    """
    environ = os.environ
    chosen = [name for name in THREAD_VARIABLES if name not in environ]
    for name in chosen:
        environ[name] = str(limit)
    # A kind of which the user sized any library is theirs.
    kinds: set[str] = {"blas", "openmp"} - {
        THREAD_VARIABLES[name] for name in THREAD_VARIABLES if name not in chosen
    }
    if kinds and any(name in sys.modules for name in NATIVE_MODULES):
        _limit_loaded(limit, kinds)
    return chosen


# A threadpoolctl controller of the libraries loaded in a worker template (`prepare`), which every worker
# forked from it has loaded too: finding and opening them is most of what limiting them costs.
_controller: Any = None


def prepare() -> None:
    """Import threadpoolctl and find the native thread pools loaded now (in a worker template, before it
    forks any worker), so that each worker forked from it limits them without looking for them again."""
    global _controller
    with contextlib.suppress(Exception):  # not installed, or a library it cannot handle
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()


def _limit_loaded(limit: int, kinds: set[str]) -> None:
    """Limit the thread pools of libraries loaded already, of ``kinds`` (``"blas"``, ``"openmp"``)."""
    with contextlib.suppress(Exception):  # not installed, or a library it cannot handle
        controller = _controller
        if controller is None:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController()
        # Not used as a context manager: the limits stay for the worker's life.
        if kinds >= {"blas", "openmp"}:
            controller.limit(limits=limit)
        else:
            for kind in kinds:
                controller.limit(limits=limit, user_api=kind)
