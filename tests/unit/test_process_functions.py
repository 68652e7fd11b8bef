"""The parent's function cache: bounded, least recently used out first, and weak where it can be."""

from __future__ import annotations

import functools
import gc
import weakref
from typing import Any

from tests import _memory_jobs as mj
from tests import jobs

from taskpool._backends.process.functions import FUNCTION_CACHE_SIZE, FunctionCache


class Slotted:
    """A callable that takes no weak reference (held strongly, bounded by the LRU)."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __call__(self) -> int:
        return self.tag


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self) -> int:
        return 0


def test_the_cache_size_is_documented_and_bounds_the_cache() -> None:
    assert FUNCTION_CACHE_SIZE >= 16
    cache = FunctionCache(size=4)
    callables = [Slotted(i) for i in range(10)]
    pickled = [cache.add(fn, None) for fn in callables]
    assert len(cache) == 4
    assert list(cache.dropped) == [p.key for p in pickled[:6]]
    assert [cache.get(fn) for fn in callables[:6]] == [None] * 6
    assert [cache.get(fn) for fn in callables[6:]] == pickled[6:]


def test_the_least_recently_used_function_leaves_first() -> None:
    cache = FunctionCache(size=2)
    first = cache.add(jobs.square, None)
    cache.add(jobs.add, None)
    assert cache.get(jobs.square) == first  # now the most recently used
    cache.add(jobs.identity, None)
    assert cache.get(jobs.square) == first
    assert cache.get(jobs.add) is None


def test_a_bound_method_is_found_again_without_keeping_its_object_alive() -> None:
    cache = FunctionCache()
    holder = mj.Holder(2)
    freed = weakref.ref(holder)
    pickled = cache.add(holder.scale, None)
    assert (
        cache.get(holder.scale) == pickled
    )  # a new bound method object, the same function and object
    assert cache.get(mj.Holder(2).scale) is None
    del holder
    gc.collect()
    assert freed() is None
    assert len(cache) == 0
    assert list(cache.dropped) == [pickled.key]


def test_a_hundred_partials_leave_no_entry_once_freed() -> None:
    cache = FunctionCache()
    for i in range(100):
        cache.add(functools.partial(jobs.add, i), None)
    gc.collect()
    assert len(cache) == 0
    assert len(cache.dropped) == 100


def test_unhashable_callables_are_cached_by_identity() -> None:
    cache = FunctionCache()
    fn: Any = Unhashable()
    pickled = cache.add(fn, None)
    assert cache.get(fn) == pickled
    assert cache.get(Unhashable()) is None
