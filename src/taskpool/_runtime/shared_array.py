"""`SharedNDArray`: the numpy array ``pool.shared.array`` returns, which pickles as a place in shared memory.

Imported on the first shared array only (it imports numpy, which taskpool does not require and a worker does
not load unless a job uses it). Runs in whichever thread pickles or unpickles an array, in the parent or a
worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import sharing

__all__ = ["SharedNDArray", "make"]


class SharedNDArray(np.ndarray):
    """A numpy array over a shared memory segment: passed to a job, it is the same memory there, not a copy.

    Views (slices, reshapes, transposes) stay shared. An array computed from it (``a + 1``) has memory of its
    own and travels as a copy, as any array does.
    """

    _token: int
    _base: int
    _size: int

    def __array_finalize__(self, obj: Any) -> None:
        self._token = getattr(obj, "_token", 0)
        self._base = getattr(obj, "_base", 0)
        self._size = getattr(obj, "_size", 0)

    def _bounds(self) -> tuple[int, int]:
        low = high = self.__array_interface__["data"][0]
        for n, stride in zip(self.shape, self.strides, strict=True):
            if n == 0:
                return low, low
            if stride < 0:
                low += (n - 1) * stride
            else:
                high += (n - 1) * stride
        return low, high + self.itemsize

    def __reduce_ex__(self, protocol: Any) -> Any:
        low, high = self._bounds()
        if self._token and self._base <= low and high <= self._base + self._size:
            sharing.note(self._token)
            start = self.__array_interface__["data"][0] - self._base
            args = (self._token, self._size, start, self.shape, self.dtype, self.strides)
            return sharing.attach_array, args
        return np.asarray(self).view(np.ndarray).__reduce_ex__(protocol)  # its own memory: a copy


def make(
    mapping: Any,
    token: int,
    size: int,
    offset: int,
    shape: tuple[int, ...],
    dtype: Any,
    strides: Any,
) -> SharedNDArray:
    """A `SharedNDArray` over ``mapping`` (the segment ``token`` of ``size`` bytes) at ``offset``."""
    whole = np.frombuffer(mapping, dtype=np.uint8)
    plain = np.ndarray(shape, dtype=dtype, buffer=whole, offset=offset, strides=strides)
    array: SharedNDArray = plain.view(SharedNDArray)
    array._token = token
    array._base = whole.__array_interface__["data"][0]
    array._size = size
    return array
