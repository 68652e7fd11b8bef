"""`IMapIterator`: what `imap` and `imap_unordered` return, consumed in the caller's thread.

It submits a bounded window of chunk jobs, and one more each time a chunk's results are taken, so the input is
read only as fast as results are consumed and an endless input runs in constant memory. Done-callbacks of the
unordered form run on the pool's event thread and only put the finished future on a queue.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._core.future import JobFuture
from .._core.job import JobKind, JobOptions
from .._core.ledger import PoolState
from .common import check_chunksize

if TYPE_CHECKING:
    from .pool import TaskPool

__all__ = ["IMAP_WINDOW_PER_WORKER", "IMapIterator", "check_map", "contiguous_chunks"]

R = TypeVar("R")

# imap keeps at most this many jobs per worker in flight: enough to keep workers busy with tiny jobs, few
# enough that the input is read lazily and memory stays flat.
IMAP_WINDOW_PER_WORKER = 256


def check_map(pool: TaskPool, fn: Callable[..., Any], chunksize: int | None) -> None:
    """Refuse a map-family call that cannot run, before anything is read or submitted."""
    check_chunksize(chunksize)
    if not callable(fn):
        raise TypeError(f"the job's function must be callable, not {fn!r}")
    if pool.state is not PoolState.RUNNING:
        raise pool._ledger.closed_error()


def contiguous_chunks(iterable: Iterable[Any], chunksize: int) -> Iterator[tuple[int, list[Any]]]:
    """``(index of the first item, items)`` for each chunk of ``chunksize`` items of the input, in order."""
    items = iter(iterable)
    first = 0
    while chunk := list(itertools.islice(items, chunksize)):
        yield first, chunk
        first += len(chunk)


class IMapIterator(Generic[R]):
    """The iterator `imap` and `imap_unordered` return (consumed in the caller's thread).

    It submits a bounded window of jobs, and one more each time a result is taken, so the input is read only
    as fast as results are consumed.
    """

    def __init__(
        self,
        pool: TaskPool,
        fn: Callable[..., R],
        iterable: Iterable[Any],
        chunksize: int,
        kind: JobKind,
        ordered: bool,
        progress: bool | str | Mapping[str, Any],
        opts: JobOptions | None = None,
        locate: bool = True,
        fill: bool = True,
        chunks: Iterator[tuple[int, list[Any]]] | None = None,
    ) -> None:
        check_map(pool, fn, chunksize)
        self._pool = pool
        self._fn = fn
        # (index of the first item, items): contiguous chunks of the input, or what `chunks` gives.
        self._chunks = contiguous_chunks(iterable, chunksize) if chunks is None else chunks
        self._call = pool._map_call()  # where the jobs' seeds come from
        self._kind = kind
        self._ordered = ordered
        self._opts = opts  # None: the pool's own
        # At least a few chunks per worker, so that a worker has its next chunk before it finishes one.
        self._window = max(4 * pool.workers, pool.workers * IMAP_WINDOW_PER_WORKER // chunksize)
        self._futures: deque[JobFuture[list[R]]] = deque()
        self._done: Any = None
        if not ordered:
            self._done = queue.SimpleQueue()
        self._input_error: BaseException | None = None
        self._exhausted = False
        self._locate = locate  # errors say which input failed (not for the stdlib drop-in: its errors are exact)
        self._current: Iterator[R] = iter(())
        self._bar: Any = None
        if progress:
            from .._core.progress import track

            # The total is known when the input has a length (a list, a range), not for a generator.
            total = len(iterable) if isinstance(iterable, Sized) else None
            self._bar = track((), progress, total=total)
        if fill:  # `amap` fills it from the event loop instead, without waiting for room
            self._fill()

    def _fill(self, lazy: bool = False) -> None:
        """Submit chunks until the window is full or the input ends (the consuming thread).

        ``lazy``: stop instead of waiting for ``max_pending`` room while a job of ours is still in flight.
        """
        while not self._exhausted and len(self._futures) < self._window:
            if lazy and self._futures and not self._pool._ledger.has_room():
                return
            try:
                first, chunk = next(self._chunks)
            except StopIteration:
                self._exhausted = True
                return
            except Exception as exc:  # the input's own error: raised after the results before it
                self._input_error = exc
                self._exhausted = True
                return
            future = self._pool._submit(
                self._fn,
                (chunk,),
                {},
                self._opts,
                self._kind,
                size=len(chunk),
                first=first if self._locate else None,
                seed_at=(self._call, first),
            )
            self._submitted(first, future)
            if self._bar is not None:
                self._bar.add(
                    future
                )  # counts the chunk's items, even if its callback comes after close
            if self._done is not None:
                future.add_done_callback(self._done.put)
            self._futures.append(future)

    def _submitted(self, first: int, future: JobFuture[list[R]]) -> None:
        """The chunk at position ``first`` of the input was submitted (the consuming thread); for subclasses."""

    def __iter__(self) -> Iterator[R]:
        # A generator, so that a for loop takes the items of each chunk at C speed (`yield from` a list
        # iterator); it shares this object's state, so next() and iteration can be mixed.
        return self._items()

    def _items(self) -> Iterator[R]:
        while True:
            yield from self._current
            try:
                value = self.next()
            except StopIteration:
                return
            yield value

    def __next__(self) -> R:
        return self.next()

    def next(self, timeout: float | None = None) -> R:
        """The next result; ``timeout`` raises `multiprocessing.TimeoutError`, as `IMapIterator.next` does."""
        while True:
            for value in self._current:
                return value
            if not self._futures:
                self._close_bar()
                if self._input_error is not None:
                    error, self._input_error = self._input_error, None
                    raise error
                raise StopIteration
            if self._ordered:
                future = self._futures[0]
                try:
                    chunk = self._result(future, timeout)
                except BaseException:
                    if (
                        future.done()
                    ):  # its job failed: raise that once, then go on with the results after it
                        self._futures.popleft()
                        self._fill()
                    raise
                self._futures.popleft()
            else:
                future = self._next_done(timeout)
                self._futures.remove(future)
                chunk = self._result(future, None)
            self._fill()
            self._current = iter(chunk)

    def _next_done(self, timeout: float | None) -> JobFuture[list[R]]:
        try:
            done: JobFuture[list[R]] = self._done.get(timeout=timeout)
        except queue.Empty:
            raise multiprocessing.TimeoutError(f"no result within {timeout} s") from None
        except KeyboardInterrupt:
            self._pool.terminate()
            raise
        return done

    def _result(self, future: JobFuture[list[R]], timeout: float | None) -> list[R]:
        try:
            return future.get(timeout)
        except KeyboardInterrupt:
            self._pool.terminate()
            raise
        except BaseException:
            self._close_bar()
            raise

    # -- the steps `amap` takes besides awaiting the head future (the event loop's thread) -------------------
    def _take_replay(self) -> list[R] | None:
        """The results of the next chunk in input order if they are known already (a checkpoint's), or None."""
        return None

    def _chunk_taken(self) -> None:
        """The head future's chunk was taken."""

    def _stop(self) -> None:
        """The iteration ended, early or not: cancel the jobs not started."""
        self._cancel_pending()

    def _cancel_pending(self) -> None:
        """Cancel the jobs in flight that have not started (the caller's thread; running ones finish)."""
        for future in self._futures:
            future.cancel()
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
