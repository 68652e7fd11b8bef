"""The pickling policy: plain pickle where it works (fast, by reference), cloudpickle where it does not.

Functions defined in ``__main__`` go by value through cloudpickle, because a worker started with spawn or
forkserver may not be able to import the parent's ``__main__`` (an interactive session, a notebook, ``python
-c``). Everything else goes by reference with pickle protocol 5 first, and falls back to cloudpickle for lambdas,
closures and nested functions. Runs in whichever thread or process calls it.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import SerializationError, TaskpoolError

__all__ = [
    "OUT_OF_BAND_MIN",
    "Payload",
    "dumps",
    "dumps_function",
    "dumps_payload",
    "dumps_split",
    "has_large_buffer",
    "loads",
    "loads_checked",
]

#: What `loads` takes: a pickle (as it was made, or as a view of a received frame), or a pickle with its
#: out-of-band buffers, as `dumps_split` makes it.
Payload = bytes | bytearray | memoryview | pickle.PickleBuffer | tuple[bytes, list[Any]]

# Buffers at least this large are worth sending out of band: written to the pipe from where they lie instead of
# being copied into a pickle first. Smaller ones cost more in bookkeeping than the copy.
OUT_OF_BAND_MIN = 64 * 1024

_BUFFER_TYPES = (bytes, bytearray, memoryview)


def has_large_buffer(items: Sequence[Any], more: Mapping[str, Any] | None = None) -> bool:
    """Whether any of ``items`` (or ``more``'s values) is a bytes-like object that pickle would copy in band
    unless it is swapped first (see `_OutOfBand`): a large ``bytes`` or ``bytearray``, or any ``memoryview``.

    Looks at the top level only: it runs for every job with arguments, so it must cost next to nothing.
    Objects that hand pickle a `pickle.PickleBuffer` themselves (numpy arrays) need no swap: the buffer
    callback of `dumps_split` takes them out of band wherever they are.
    """
    for item in items:
        if _needs_swap(item):
            return True
    if more:
        for item in more.values():
            if _needs_swap(item):
                return True
    return False


def _needs_swap(item: Any) -> bool:
    kind = type(item)
    return kind is memoryview or (kind in _BUFFER_TYPES and len(item) >= OUT_OF_BAND_MIN)


def _rebuild_bytes(buffer: Any) -> bytes:
    """The ``bytes`` that `_OutOfBand` stood for, from the buffer unpickling hands over.

    Unpickling hands over the buffer object it was given for a read-only buffer: when that is a whole view of
    a ``bytes`` object (the frame reader reads large buffers straight into one), that object is the value, and
    copying it would double the memory a large result takes.
    """
    if type(buffer) is memoryview:
        obj = buffer.obj
        if type(obj) is bytes and buffer.nbytes == len(obj) and buffer.c_contiguous:
            return obj
    return bytes(buffer)


class _OutOfBand:
    """Stands in for a large ``bytes`` or ``bytearray`` so that protocol 5 sends it out of band.

    Protocol 5 does that by itself for objects that hand it a `pickle.PickleBuffer` (numpy arrays), but never
    for bytes and bytearray, which it copies into the pickle, and a Pickler's ``reducer_override`` is not
    consulted for builtin types, so large ones are swapped for this first. A bytearray comes back as a new
    bytearray (it owns its memory: one copy, from where the buffer landed).
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> Any:
        rebuild = _rebuild_bytes if type(self.data) is bytes else bytearray
        return rebuild, (pickle.PickleBuffer(self.data),)


def _rebuild_view(buffer: Any, fmt: str, shape: tuple[int, ...]) -> memoryview:
    """The ``memoryview`` that `_OutOfBandView` stood for: over the received buffer itself (no copy)."""
    view = memoryview(buffer)
    try:
        if view.format != fmt or view.ndim != len(shape):
            cast: memoryview = view.cast("B").cast(fmt, shape)  # type: ignore[call-overload]
            return cast
        return view
    except (TypeError, ValueError):
        return view  # a format cast() does not take: the bytes, as a flat view


class _OutOfBandView:
    """Stands in for a ``memoryview``, which does not pickle: it travels as its bytes, out of band when large,
    and comes back as a view of the same format and shape over the received buffer."""

    __slots__ = ("view",)

    def __init__(self, view: memoryview) -> None:
        self.view = view

    def __reduce_ex__(self, protocol: Any) -> Any:
        view = self.view
        data = (
            view if view.contiguous else view.tobytes()
        )  # PickleBuffer.raw() needs contiguous memory
        return _rebuild_view, (pickle.PickleBuffer(data), view.format, view.shape)


def _swap(item: Any) -> Any:
    kind = type(item)
    if kind is bytes or kind is bytearray:
        return _OutOfBand(item) if len(item) >= OUT_OF_BAND_MIN else item
    return _OutOfBandView(item) if kind is memoryview else item


def _swapped(obj: Any) -> Any:
    if type(obj) in _BUFFER_TYPES:
        return _swap(obj)
    if type(obj) is list:
        return [_swap(item) for item in obj]
    if type(obj) is tuple and len(obj) == 2 and type(obj[0]) is tuple and type(obj[1]) is dict:
        return (tuple(_swap(a) for a in obj[0]), {k: _swap(v) for k, v in obj[1].items()})
    return obj


def dumps_split(
    obj: Any,
    part: str,
    where: str,
    job: str | None = None,
    swap: bool = True,
    writable_min: int = OUT_OF_BAND_MIN,
) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle ``obj`` with its large buffers apart: ``(pickle, buffers)``, which `loads` takes back.

    ``obj`` is a bytes-like object, a list of items, or an ``(args, kwargs)`` pair; large bytes-like objects
    at its top level, and large buffers that objects export to pickle anywhere in it (numpy arrays,
    bytearrays), travel as buffers that refer to their memory (no copy); the frame writer sends them from
    there, through the pipe or shared memory. ``swap=False`` skips the look at the top level for large
    ``bytes`` and memoryviews (the caller knows there are none, see `has_large_buffer`). Writable buffers
    under ``writable_min`` bytes are copied into the pickle, so that what travels is what ``obj`` held now.
    """
    buffers: list[pickle.PickleBuffer] = []

    def apart(buffer: pickle.PickleBuffer) -> bool:
        # False: out of band. Small buffers cost more in bookkeeping than the copy into the pickle.
        with memoryview(buffer) as view:
            if view.nbytes < (OUT_OF_BAND_MIN if view.readonly else writable_min):
                return True
        buffers.append(buffer)
        return False

    if swap:
        obj = _swapped(obj)
    try:
        main = pickle.dumps(obj, protocol=5, buffer_callback=apart)
    except Exception:
        buffers.clear()
        main = _dumps_by_value(obj, part, where, job, apart)
    return main, buffers


def dumps_payload(
    obj: Any, part: str, where: str, job: str | None = None, swap: bool = True
) -> Payload:
    """`dumps_split`, as one payload: the pickle alone when no buffer went apart."""
    main, buffers = dumps_split(obj, part, where, job, swap)
    return (main, buffers) if buffers else main


def loads(payload: Payload) -> Any:
    """Unpickle what `dumps` or `dumps_split` made (a pickle, or a ``(pickle, buffers)`` pair)."""
    if type(payload) is tuple:  # not isinstance: this runs per job, and type() is faster
        return pickle.loads(payload[0], buffers=payload[1])
    return pickle.loads(payload)  # type: ignore[arg-type]  # PickleBuffer is a buffer too


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def dumps(obj: Any, part: str, where: str, job: str | None = None) -> bytes:
    """Pickle ``obj``; raise `SerializationError` naming ``part``, ``where`` and ``job`` when it cannot be."""
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:
        pass  # plain pickle refuses lambdas, closures and local classes: cloudpickle can take them by value
    return _dumps_by_value(obj, part, where, job)


def _dumps_by_value(
    obj: Any,
    part: str,
    where: str,
    job: str | None,
    buffer_callback: Callable[[pickle.PickleBuffer], bool] | None = None,
) -> bytes:
    """Pickle with cloudpickle; raise `SerializationError` naming the part (and the culprit) when it fails."""
    try:
        return _by_value(obj, buffer_callback)
    except Exception as exc:
        reason = _reason(exc)
        culprit = _culprit(obj) if part == "arguments" else None
        if culprit is not None:
            reason = f"{culprit} does not pickle ({reason})"
        raise SerializationError(part, "pickle", where, job, reason) from exc


def _culprit(obj: Any) -> str | None:
    """Which argument of a call ``(args, kwargs)``, or which item of a chunk, does not pickle (on failure only)."""
    if type(obj) is tuple and len(obj) == 2 and type(obj[0]) is tuple and type(obj[1]) is dict:
        named = [(f"argument {i + 1}", v) for i, v in enumerate(obj[0])]
        named += [(f"keyword argument {k!r}", v) for k, v in obj[1].items()]
    elif type(obj) is list:
        named = [(f"item {i} of the chunk", v) for i, v in enumerate(obj)]
    else:
        return None
    for label, value in named:
        try:
            _by_value(value)
        except Exception:
            return f"{label} (a {type(value).__module__}.{type(value).__qualname__})"
    return None


def _by_value(
    obj: Any, buffer_callback: Callable[[pickle.PickleBuffer], bool] | None = None
) -> bytes:
    """Pickle with cloudpickle, which takes functions and classes by value, and nothing else it would fake."""
    buffer = io.BytesIO()
    _code_pickler()(buffer, protocol=5, buffer_callback=buffer_callback).dump(obj)
    return buffer.getvalue()


_pickler_class: list[type[pickle.Pickler]] = []


def _code_pickler() -> type[pickle.Pickler]:
    """cloudpickle's Pickler, refusing what cloudpickle would turn into something else (made on first use).

    cloudpickle exists here for code that plain pickle cannot take by reference: lambdas, closures, local and
    ``__main__`` functions and classes. It also pickles an open file as a ``StringIO`` of its contents, which
    would hand the receiver a different object than the job returned; such objects are refused instead, as
    plain pickle refuses them.
    """
    if not _pickler_class:
        import cloudpickle  # here, not at the top: a worker that never needs it does not pay for its import

        class CodePickler(cloudpickle.Pickler):  # type: ignore[misc]
            def reducer_override(self, obj: Any) -> Any:
                if isinstance(obj, io.IOBase):
                    raise pickle.PicklingError(
                        f"cannot pickle {type(obj).__name__!r} object: an open file or stream stays in the "
                        "process that opened it; send its path or its contents instead"
                    )
                return super().reducer_override(obj)

        _pickler_class.append(CodePickler)
    return _pickler_class[0]


def dumps_function(fn: Callable[..., Any], job: str | None = None) -> bytes:
    """Pickle a job's function (by value for ``__main__`` functions, else by reference when possible)."""
    if getattr(fn, "__module__", None) == "__main__":
        try:
            return _by_value(fn)
        except Exception as exc:
            raise SerializationError("function", "pickle", "parent", job, _reason(exc)) from exc
    return dumps(fn, "function", "parent", job)


def loads_checked(data: Payload, part: str, where: str, job: str | None = None) -> Any:
    """Unpickle ``data``; raise `SerializationError` naming the part that failed.

    taskpool's own errors raised while rebuilding an object pass through as themselves (a shared-state proxy
    whose server is gone raises `SharedStateGoneError`): they say more than "could not unpickle".
    """
    try:
        return loads(data)
    except TaskpoolError:
        raise
    except Exception as exc:
        raise SerializationError(part, "unpickle", where, job, _reason(exc)) from exc
