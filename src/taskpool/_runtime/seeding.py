"""Per-job seeds: derived from the pool's seed and the job's position, set around each call, read by the job.

A pool made with ``seed=`` gives each job a `SeedKey`: ``(pool seed, stream, call number, first index)``. The
stream says what the call number counts: `MAP` (the pool's n-th call of the map family; the index is the
item's position in that call's input) or `SUBMIT` (the pool's n-th single submission; index 0). The seed of
one item is a hash of the four numbers (BLAKE2b), so it depends on where the item stands, not on which worker
runs it, how the input was chunked, or the order jobs ran in; a retry sends the same key and gets the same
seed.

Around each item `seeded` makes the item's seed readable (`job_seed`, `job_rng`) and reseeds the global
``random`` module, and numpy's legacy global generator when numpy is imported in this process, from seeds
derived from it (not equal to it, so that ``job_rng()`` and ``random`` draw different numbers).

Runs where the job runs (any worker process or thread); the state is a context variable, so concurrent jobs
in threads each see their own. Imports the standard library only; numpy is imported by ``job_rng("numpy")``
alone.
"""

from __future__ import annotations

import contextvars
import sys
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    import random

    import numpy

__all__ = ["MAP", "SUBMIT", "SeedKey", "item_seed", "job_rng", "job_seed", "leave", "seeded_enter"]

#: The stream of the map family: the call number counts the pool's map-family calls.
MAP = 1
#: The stream of single submissions (submit, apply, apply_async): the call number counts them.
SUBMIT = 2

#: ``(pool seed, stream, call number, index of the job's first item)``: what a job carries to its worker.
SeedKey = tuple[int, int, int, int]

_M32 = 0xFFFFFFFF

# The running item's state: [seed, its random.Random or None, its numpy Generator or None]; the generators
# are made on first use, so an item that draws nothing pays nothing for them.
_running: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "taskpool_job_seed", default=None
)


# hashlib.blake2b, imported on first use: a pool without a seed never pays for hashlib's import (it loads
# OpenSSL), in the pool's process or in a worker.
_blake2b: Any = None


def _digest(key: SeedKey, offset: int) -> bytes:
    global _blake2b
    if _blake2b is None:
        from hashlib import blake2b

        _blake2b = blake2b
    root, stream, number, first = key
    data = b"taskpool-seed:%d:%d:%d:%d" % (root, stream, number, first + offset)
    digest: bytes = _blake2b(data, digest_size=20).digest()
    return digest


def item_seed(key: SeedKey, offset: int = 0) -> int:
    """The seed (a 64-bit int) of the item ``offset`` places after the first of the job ``key``."""
    return int.from_bytes(_digest(key, offset)[:8], "little")


def seeded_enter(key: SeedKey, offset: int) -> contextvars.Token[list[Any] | None]:
    """Make the item's seed current and reseed the global generators from it; `leave` undoes the first."""
    digest = _digest(key, offset)
    token = _running.set([int.from_bytes(digest[:8], "little"), None, None])
    # Imported here (after the first time, a lookup): importing taskpool need not import random.
    import random

    random.seed(int.from_bytes(digest[8:16], "little"))
    np = sys.modules.get("numpy")
    if np is not None:  # seeded only where the program imported numpy: never imported here
        np.random.seed(int.from_bytes(digest[16:20], "little") & _M32)
    return token


def leave(token: contextvars.Token[list[Any] | None]) -> None:
    """End the item that `seeded_enter` began (the global generators keep their state)."""
    _running.reset(token)


def _state() -> list[Any]:
    state = _running.get()
    if state is not None:
        return state
    from .attempt import job_here

    if job_here()[0] is not None:
        raise RuntimeError(
            "job_seed() and job_rng() need a pool made with a seed: this job's pool has none. "
            "Make it with TaskPool(seed=N) (or `taskpool run --seed N`) for reproducible draws"
        )
    raise RuntimeError(
        "job_seed() and job_rng() are called inside a job of a pool made with TaskPool(seed=N); "
        "this thread is running no job"
    )


def job_seed() -> int:
    """The running job's seed: a 64-bit int derived from the pool's seed and the job's position.

    For an item of a map-family call it depends on the pool's seed, the call's number among the pool's
    map-family calls and the item's index; for `submit` and `apply_async`, on the number of the submission.
    It is the same whatever the workers, the chunking and the retries.

    Raises:
        RuntimeError: called outside a job, or in a job of a pool made without ``seed=``.
    """
    seed: int = _state()[0]
    return seed


@overload
def job_rng() -> random.Random: ...
@overload
def job_rng(kind: Literal["random"]) -> random.Random: ...
@overload
def job_rng(kind: Literal["numpy"]) -> numpy.random.Generator: ...
def job_rng(kind: str = "random") -> Any:
    """The running job's own generator, seeded with `job_seed`: the same object for the whole job.

    Args:
        kind: ``"random"`` for a `random.Random`, ``"numpy"`` for a `numpy.random.Generator`
            (``numpy.random.default_rng(job_seed())``; numpy is imported only then).

    Raises:
        RuntimeError: called outside a job, or in a job of a pool made without ``seed=``.
        ValueError: ``kind`` is neither ``"random"`` nor ``"numpy"``.
    """
    if kind not in ("random", "numpy"):
        raise ValueError(f'job_rng() takes "random" or "numpy", not {kind!r}')
    state = _state()
    if kind == "random":
        if state[1] is None:
            import random

            state[1] = random.Random(state[0])
        return state[1]
    if state[2] is None:
        import numpy as np

        state[2] = np.random.default_rng(state[0])
    return state[2]
