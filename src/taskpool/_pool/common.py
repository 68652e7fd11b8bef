"""Small rules shared by `TaskPool` and the `Pool` drop-in: chunk sizes, chunking, whole-number options.

Pure functions; run in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAP_CHUNKS_PER_WORKER",
    "check_chunksize",
    "check_preload",
    "check_whole",
    "choose_chunksize",
    "split_chunks",
    "unexpected_arguments",
]

# map splits its input into this many chunks per worker when no chunksize is given. About sixteen
# (multiprocessing.Pool makes four): the parent pickles the next chunks while workers run the first ones, uneven
# chunks even out, and the serial head (pickling the first chunk) and tail (unpickling the last result) stay
# short. Measured on 2 workers over 1M tiny items: 4 per worker 5.8-6.7M items/s, 16 per worker 6.4-7.8M,
# 32 per worker 6.0-7.6M.
MAP_CHUNKS_PER_WORKER = 16


def check_chunksize(chunksize: int | None) -> None:
    """Refuse a chunk size that is not a whole number >= 1 (None means "choose one")."""
    if (
        chunksize is not None
        and not isinstance(chunksize, (int, str))
        and hasattr(chunksize, "__iter__")
    ):
        raise TypeError(
            "map takes one iterable, and its third argument is the chunk size, not a second iterable; to "
            "call fn(a, b) over several iterables, as concurrent.futures' map does, use "
            "starmap(fn, zip(a, b))"
        )
    if chunksize is not None and (
        not isinstance(chunksize, int) or isinstance(chunksize, bool) or chunksize < 1
    ):
        raise ValueError(
            f"chunksize must be a whole number >= 1 (or None to choose), not {chunksize!r}"
        )


def split_chunks(items: list[Any], chunksize: int | None, chunks_wanted: int) -> list[list[Any]]:
    """Cut ``items`` into chunks of ``chunksize`` (chosen to make about ``chunks_wanted`` when None)."""
    if chunksize is None:
        chunksize = choose_chunksize(len(items), chunks_wanted)
    return [items[i : i + chunksize] for i in range(0, len(items), chunksize)]


def choose_chunksize(length: int, chunks_wanted: int) -> int:
    """The chunk size that cuts ``length`` items into about ``chunks_wanted`` chunks (at least 1)."""
    chunksize, extra = divmod(length, chunks_wanted)
    return chunksize + 1 if extra or not chunksize else chunksize


def check_whole(name: str, value: object, minimum: int, optional: bool) -> None:
    """Refuse ``value`` unless it is a whole number >= ``minimum`` (or None, when ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        none = " or None" if optional else ""
        raise ValueError(f"{name} must be a whole number >= {minimum}{none}, not {value!r}")


# What other pools call the number of workers.
_WORKERS_ELSEWHERE = ("max_workers", "processes", "n_jobs", "num_workers", "n_workers")


def unexpected_arguments(unexpected: Mapping[str, object]) -> str:
    """The message for keyword arguments `TaskPool` does not take, pointing to its name for what was meant."""
    names = ", ".join(sorted(unexpected))
    if any(name in _WORKERS_ELSEWHERE for name in unexpected):
        return (
            f"TaskPool() got an unexpected keyword argument {names}: the number of workers is "
            "`workers`, as in TaskPool(workers=4) or TaskPool(4)"
        )
    return (
        f"TaskPool() got unexpected keyword arguments: {names}; see help(TaskPool) for the options"
    )


def check_preload(preload: Any) -> tuple[str, ...]:
    """``TaskPool(preload=...)`` as a tuple of module names.

    Raises:
        TypeError: it is not a list of strings.
        ValueError: a name is not a dotted module name.
    """
    if isinstance(preload, (str, bytes)) or not hasattr(preload, "__iter__"):
        raise TypeError(f"preload must be a list of module names, not {preload!r}")
    names = tuple(preload)
    for name in names:
        if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(
                f"preload: {name!r} is not a module name such as 'numpy' or 'mypkg.models'"
            )
    return names
