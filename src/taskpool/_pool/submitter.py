"""The job-submitting methods users write: `Submitter`, which `TaskPool` and `PoolView` share.

Every method runs in the caller's thread and hands jobs to the pool (``_core``) with the options this object
carries; `TaskPool.options` makes a `PoolView` with other options over the same workers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .._core.job import UNSET, JobKind, JobOptions, Unset
from .common import MAP_CHUNKS_PER_WORKER, check_chunksize, choose_chunksize, split_chunks
from .imap import IMapIterator, check_map

if TYPE_CHECKING:
    # Only for type checkers: annotations are strings at run time, so typing_extensions is not needed there.
    from typing_extensions import TypeVarTuple, Unpack

    from .._core.backup import Median
    from .._core.future import JobFuture
    from .._core.retry import Retry
    from .checkpointed import CheckpointedIterator
    from .pool import TaskPool

__all__ = ["PoolView", "Submitter"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
if TYPE_CHECKING:
    Ts = TypeVarTuple("Ts")


class Submitter:
    """The job-submitting methods, shared by `TaskPool` and the views that `options` returns.

    Each runs in the caller's thread; the blocking ones (`apply`, `map`, `starmap`) wait there.
    """

    _core: TaskPool
    _opts: JobOptions

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> JobFuture[R]:
        """Submit ``fn(*args, **kwargs)`` and return its future at once (runs in the caller's thread).

        Raises:
            PoolClosedError: the pool is closed or terminated.
            TypeError: ``fn`` is not callable.
        """
        return self._core._submit(fn, args, kwargs, self._opts)

    def apply(
        self, fn: Callable[..., R], args: Iterable[Any] = (), kwds: Mapping[str, Any] | None = None
    ) -> R:
        """Run ``fn(*args, **kwds)`` on the pool and return its result, blocking the caller, like `Pool.apply`.

        The job's own exception is raised here as itself, with the worker's traceback as ``__cause__``.

        Raises:
            RuntimeError: called in a callback or event handler of the same pool, where it would wait forever.
        """
        self._core._ledger.refuse_wait("apply()")
        future: JobFuture[R] = self._core._submit(fn, tuple(args), dict(kwds or {}), self._opts)
        return self._core._wait(future)

    def apply_async(
        self,
        fn: Callable[..., R],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[R], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> JobFuture[R]:
        """Submit ``fn(*args, **kwds)``; like `Pool.apply_async`.

        Exactly one of ``callback`` (with the result) or ``error_callback`` (with the exception) runs, once,
        on the pool's event thread in the parent process, and it has returned before the future's
        ``get()``/``result()`` returns. A callback that raises is logged; the pool goes on.
        """
        for cb in (callback, error_callback):
            if cb is not None and not callable(cb):
                raise TypeError(f"callbacks must be callable, not {cb!r}")
        return self._core._submit(
            fn,
            tuple(args),
            dict(kwds or {}),
            self._opts,
            callback=callback,
            error_callback=error_callback,
        )

    def map(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int | None = None,
        progress: bool | str | Mapping[str, Any] = False,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> list[R]:
        """Apply ``fn`` to every item and return the results in input order, like `Pool.map`.

        The input is read whole first (as `Pool.map` does; `imap` reads lazily). Items are sent in chunks of
        ``chunksize`` (chosen from the input's length and the worker count when None); chunking never
        changes the results. The first failing job's exception (in input order) is raised here.

        Args:
            progress: True or a description draws a tqdm progress bar on stderr when it is a terminal; a
                mapping is passed to tqdm as keyword arguments (``{"disable": False}`` draws it always).
            checkpoint: a file where results are recorded as they arrive; the same call made again (after
                the program was killed, say) skips the items recorded there and returns their recorded
                results with the new ones. See the reproducibility guide.

        Raises:
            CheckpointError: ``checkpoint`` is not a checkpoint of this function, or is damaged (before any
                job runs).
        """
        return _map(
            self._core, fn, iterable, chunksize, progress, JobKind.CHUNK, self._opts, checkpoint
        )

    def starmap(
        self,
        fn: Callable[[Unpack[Ts]], R],
        iterable: Iterable[tuple[Unpack[Ts]]],
        chunksize: int | None = None,
        progress: bool | str | Mapping[str, Any] = False,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> list[R]:
        """Like `map`, but each item is unpacked as the arguments: ``fn(*item)``, like `Pool.starmap`.

        Type checkers check each item (a tuple) against ``fn``'s parameters (PEP 646).
        """
        return _map(
            self._core, fn, iterable, chunksize, progress, JobKind.STARCHUNK, self._opts, checkpoint
        )

    def imap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int = 1,
        progress: bool | str | Mapping[str, Any] = False,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> IMapIterator[R]:
        """Apply ``fn`` lazily: results in input order, the input read only as fast as results are taken.

        At most a bounded number of jobs is in flight, so an endless or huge input runs in constant memory.
        An exception from a job or from the input iterable is raised when its turn comes. ``checkpoint``:
        as for `map` (the file is closed when the iteration ends or is left).
        """
        return self._imap(fn, iterable, chunksize, True, progress, checkpoint)

    def imap_unordered(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int = 1,
        progress: bool | str | Mapping[str, Any] = False,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> IMapIterator[R]:
        """Like `imap`, but results come as they are ready, in any order.

        With ``checkpoint`` (see `map`), the recorded results come as the input reaches them.
        """
        return self._imap(fn, iterable, chunksize, False, progress, checkpoint)

    def _imap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Any],
        chunksize: int,
        ordered: bool,
        progress: bool | str | Mapping[str, Any],
        checkpoint: str | os.PathLike[str] | None,
        fill: bool = True,
    ) -> IMapIterator[R]:
        """The iterator of an imap-like call; ``fill=False`` submits nothing yet (`amap` fills it)."""
        core, kind, opts = self._core, JobKind.CHUNK, self._opts
        if checkpoint is None:
            return IMapIterator(
                core, fn, iterable, chunksize, kind, ordered, progress, opts, fill=fill
            )
        # Imported here: only a checkpointed call pays for its import.
        from .checkpointed import CheckpointedIterator

        return CheckpointedIterator(
            core, fn, iterable, chunksize, kind, ordered, progress, opts, checkpoint, fill=fill
        )

    def amap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        chunksize: int = 1,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> AsyncGenerator[R, None]:
        """Apply ``fn`` for a coroutine: ``async for result in pool.amap(fn, items)``, results in input order.

        As `imap`, but iterated with ``async for`` and never blocking the event loop: the input is read lazily
        (in the loop's thread, as results are taken) with a bounded number of chunk jobs in flight. The first
        failing job's exception (or the input's own) ends the iteration.

        Cancelling the task while it waits for a result stops every job of this map in flight (`JobFuture.stop`:
        the workers of running jobs are killed on the process backend; jobs not started are cancelled).
        Leaving the loop early otherwise cancels the jobs not started once the iterator is closed (at once
        with ``contextlib.aclosing``); running ones finish. ``checkpoint``: as for `imap`, a file where results
        are recorded as they arrive; the same call made again yields the recorded results without running
        their items (the file is read, and written, in the loop's thread and the pool's event thread).

        Raises:
            PoolClosedError: the pool is closed or terminated.
            ValueError: ``chunksize`` is not a whole number >= 1.
            CheckpointError: ``checkpoint`` is not a checkpoint of this function, or is damaged.
        """
        from .amap import amap_results

        return amap_results(self._imap(fn, iterable, chunksize, True, False, checkpoint, False))

    def options(
        self,
        *,
        timeout: float | Unset | None = UNSET,
        retry: Retry | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        backup_after: float | Median | Unset | None = UNSET,
    ) -> PoolView:
        """A view of the pool whose jobs get these options; the pool itself is unchanged.

        ``pool.options(timeout=2.0, retry=Retry(attempts=3)).submit(fn, x)``

        ``backup_after`` (seconds, or ``taskpool.Median(3.0)``: three times the median duration of the
        function's finished jobs) gives a job that runs longer a backup copy on another worker; the first
        outcome wins and the other copy is stopped. It declares the jobs idempotent: they may run twice.

        Raises:
            ValueError: the backend cannot enforce a timeout or run backups, or a value is out of range.
            TypeError: a value is of the wrong type.
        """
        opts = self._opts.merge(timeout=timeout, retry=retry, name=name, backup_after=backup_after)
        self._core._check_options(opts)
        return PoolView(self._core, opts)


class PoolView(Submitter):
    """A pool with other job options, made by `TaskPool.options`. It shares the pool's workers."""

    def __init__(self, core: TaskPool, opts: JobOptions) -> None:
        self._core = core
        self._opts = opts

    def __repr__(self) -> str:
        return f"<PoolView of {self._core!r} with {self._opts}>"


def _map_futures(
    core: TaskPool,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    chunksize: int | None,
    kind: JobKind,
    opts: JobOptions,
) -> list[JobFuture[list[Any]]]:
    core._ledger.refuse_wait("map()")
    check_map(core, fn, chunksize)
    chunks = split_chunks(list(iterable), chunksize, core.workers * MAP_CHUNKS_PER_WORKER)
    call = core._map_call()
    futures = []
    first = 0
    for chunk in chunks:
        futures.append(
            core._submit(
                fn, (chunk,), {}, opts, kind, size=len(chunk), first=first, seed_at=(call, first)
            )
        )
        first += len(chunk)
    return futures


def _map(
    core: TaskPool,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    chunksize: int | None,
    progress: bool | str | Mapping[str, Any],
    kind: JobKind,
    opts: JobOptions,
    checkpoint: str | os.PathLike[str] | None = None,
) -> list[Any]:
    if checkpoint is not None:
        # The input is read whole first, as map does, then run as an ordered imap that records.
        core._ledger.refuse_wait("map()")
        check_chunksize(chunksize)
        items = list(iterable)
        if chunksize is None:
            chunksize = choose_chunksize(len(items), core.workers * MAP_CHUNKS_PER_WORKER)
        from .checkpointed import CheckpointedIterator

        ordered: CheckpointedIterator[Any] = CheckpointedIterator(
            core, fn, items, chunksize, kind, True, progress, opts, checkpoint
        )
        try:
            return list(ordered)
        finally:
            ordered.close()  # a failure: the jobs not started are cancelled
    futures = _map_futures(core, fn, iterable, chunksize, kind, opts)
    bar = None
    if progress:
        from .._core.progress import track

        bar = track(futures, progress, total=sum(f._items for f in futures))
    results: list[Any] = []
    try:
        for future in futures:
            chunk: list[Any] = core._wait(future)
            results.extend(chunk)
    except BaseException:
        # The call has failed: the items that have not started will not be wanted. Running ones finish.
        for future in futures:
            future.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    return results
