"""A map that survives its caller: ``imap``, ``imap_unordered``, ``map`` and ``starmap`` with ``checkpoint=``.

`CheckpointedIterator` is an `IMapIterator` whose chunks come from `checkpointed_chunks`: the input is read
in order, and the items a `Checkpoint` holds results for are skipped (matched by position, as ``taskpool run
--resume`` matches its records), so only the others become jobs, in chunks of consecutive positions. Each
chunk's results are recorded when its job succeeds; the recorded results are replayed where they belong, so
the caller sees every result once, in input order (or, unordered, the recorded ones as they are reached).

A job that fails is not recorded: the call raises its exception as `imap` would, and a rerun runs its items
again. A result that does not pickle is not recorded either (its items rerun).

Threads: the consuming thread reads the input, submits, replays and yields; the record callbacks run where
futures complete (the pool's event thread); the checkpoint's lock keeps their writes apart.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._core.job import JobKind, JobOptions, job_name
from .checkpoint import Checkpoint
from .imap import IMapIterator, check_map

if TYPE_CHECKING:
    from .._core.future import JobFuture
    from .pool import TaskPool

__all__ = ["CheckpointedIterator", "checkpointed_chunks", "function_id"]

R = TypeVar("R")

# Entries of a plan: what comes next in input order, a recorded chunk or one that was submitted.
_REPLAY = 0
_RUN = 1


def function_id(fn: Callable[..., Any]) -> str:
    """What a checkpoint's header names a function by: ``module.qualified_name``."""
    module = getattr(fn, "__module__", None)
    name = job_name(fn)
    return f"{module}.{name}" if module else name


def checkpointed_chunks(
    ckpt: Checkpoint, iterable: Iterable[Any], chunksize: int, plan: deque[tuple[int, int, int]]
) -> Iterator[tuple[int, list[Any]]]:
    """``(position of the first item, items)`` of each chunk of consecutive items that ``ckpt`` lacks.

    Appends to ``plan``, in input order, ``(_REPLAY, first, items)`` for each recorded chunk it skips (all
    its items, or those the input still has) and ``(_RUN, first, items)`` for each chunk it yields. Walking from position 0 and over whole records, it meets a recorded
    position only at the first of a record: records never overlap (`Checkpoint` refuses a file where they do).
    """
    items = iter(iterable)
    index = 0
    while True:
        record = ckpt.records.get(index)
        if record is not None:
            skipped = sum(1 for _ in itertools.islice(items, record.items))
            if skipped:
                plan.append((_REPLAY, index, skipped))
            if skipped < record.items:
                return  # the input ends inside a record: only what the input still has is replayed
            index += skipped
            continue
        chunk: list[Any] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == chunksize or index + len(chunk) in ckpt.covered:
                break
        if not chunk:
            return
        plan.append((_RUN, index, len(chunk)))
        yield index, chunk
        index += len(chunk)


class CheckpointedIterator(IMapIterator[R]):
    """An `IMapIterator` that skips what ``checkpoint`` holds, replays it, and records new results.

    Raises:
        CheckpointError: the file cannot be used (before any job is submitted).
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
        opts: JobOptions | None,
        checkpoint: str | os.PathLike[str],
        fill: bool = True,
    ) -> None:
        check_map(pool, fn, chunksize)  # before the file is made
        call = "starmap" if kind == JobKind.STARCHUNK else "map"
        ckpt = Checkpoint(checkpoint, function_id(fn), call)
        self._ckpt = ckpt
        self._plan: deque[tuple[int, int, int]] = deque()
        weakref.finalize(
            self, ckpt.close
        )  # an iterator dropped unfinished still lets go of the file
        try:
            chunks = checkpointed_chunks(ckpt, iterable, chunksize, self._plan)
            super().__init__(
                pool,
                fn,
                iterable,
                chunksize,
                kind,
                ordered,
                progress,
                opts,
                chunks=chunks,
                fill=False,
            )
        except BaseException:
            ckpt.close()
            raise
        try:
            if self._bar is not None:
                self._bar.advance(len(ckpt.covered))
            if fill:  # `amap` fills it from the event loop instead, without waiting for room
                self._fill()
        except BaseException:
            self.close()
            raise

    def _submitted(self, first: int, future: JobFuture[list[R]]) -> None:
        ckpt = self._ckpt

        def record(done: Any) -> None:
            if not done.cancelled() and done.exception() is None:
                ckpt.add(first, done.result())

        future.add_done_callback(record)

    def next(self, timeout: float | None = None) -> R:
        """The next result, recorded or new; ends (StopIteration) with the checkpoint closed."""
        plan = self._plan
        while True:
            for value in self._current:
                return value
            if self._ckpt.error is not None:
                raise self._ckpt.error
            if not plan and not self._futures:
                self._fill()
            if plan and plan[0][0] == _REPLAY:
                _, first, count = plan.popleft()
                self._current = iter(self._ckpt.replay(first)[:count])
                continue
            if not self._ordered and plan:
                while (
                    plan and plan[0][0] == _RUN
                ):  # results come as they are ready: no place to keep
                    plan.popleft()
                continue
            head = self._futures[0] if self._futures else None
            try:
                value = super().next(timeout)
            except StopIteration:
                self.close()
                raise
            except multiprocessing.TimeoutError:
                raise
            except BaseException:
                taken = not self._futures or self._futures[0] is not head
                if self._ordered and head is not None and taken:
                    plan.popleft()  # its chunk failed: the iteration goes on after it, as imap's does
                raise
            if self._ordered:
                plan.popleft()
            return value

    def _take_replay(self) -> list[R] | None:
        """The recorded results of the next chunk, if a recorded chunk comes next in input order (`amap`)."""
        if self._ckpt.error is not None:
            raise self._ckpt.error
        plan = self._plan
        if not plan or plan[0][0] != _REPLAY:
            return None
        _, first, count = plan.popleft()
        replayed: list[R] = self._ckpt.replay(first)[:count]
        return replayed

    def _chunk_taken(self) -> None:
        self._plan.popleft()  # its chunk was submitted, so the head of the plan is its

    def _stop(self) -> None:
        self.close()

    def _items(self) -> Iterator[R]:
        try:
            yield from super()._items()
        finally:  # also when the loop over it ends early: a break, or an exception
            self.close()

    def close(self) -> None:
        """Stop: cancel the jobs not started, and close the file (the caller's thread).

        Results that arrive later (of jobs that were running) are not recorded: a rerun runs them again. So
        the file is free at once for the same call made again.
        """
        self._cancel_pending()
        self._ckpt.close()
