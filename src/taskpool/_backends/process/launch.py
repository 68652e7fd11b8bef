"""Starting one worker process: its pipes and shared values, the process, and the scheduler's `Worker` for it.

Runs in the scheduler thread only (`Workers.spawn`, which registers the new worker with its selector). The
worker's ends of its pipes (and of its shared memory socket) are closed here once it has started, so that only
the worker, and what its jobs start, holds them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .capture import Capture
from .forked import TemplateProcess
from .handle import Worker
from .lineage import lifeline, watch_death
from .memory import oom_kills
from .protocol import FrameReader, FrameWriter, enlarge_pipe
from .ring import new_ring
from .segments import Link, socket_pair
from .templates import acquire
from .worker import worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

    from .lender import SegmentPool

__all__ = ["Recipe", "launch"]


@dataclass(frozen=True)
class Recipe:
    """What every worker of one backend starts with."""

    ctx: BaseContext
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]
    capture_output: bool
    preload: tuple[str, ...]
    thread_limit: int | None
    #: Fork workers from a template (`templates`) rather than through the context's start method.
    template: bool
    #: ``max_memory_per_worker`` in bytes, or None.
    memory_limit: int | None
    #: The segments large arguments travel in, lent to every worker; None: they go through the pipes.
    segments: SegmentPool | None
    #: The backend's withdrawal mark (see `Workers.withdraw`), shared by all its workers.
    withdrawn: Any
    #: The files that count the OOM kills of the workers' cgroup (none off Linux).
    oom_paths: list[str]
    start_method: str
    #: Set when the pool is being terminated: a worker start still waiting for its template gives up.
    terminating: threading.Event


def launch(spec: Recipe, wid: int) -> Worker:
    """Start worker ``wid`` as ``spec`` says.

    Raises:
        Exception: the process could not start (the initializer or its arguments do not pickle, no fork).
    """
    ctx = spec.ctx
    pipes: list[Connection] = []
    try:
        # jobs, results, stacks, and with capture_output the worker's stdout and stderr: (read end,
        # write end) each
        for _ in range(5 if spec.capture_output else 3):
            pipes.extend(ctx.Pipe(duplex=False))
    except BaseException:
        _close(*pipes)  # the failure may pass (no file descriptors for now): leak nothing
        raise
    jobs_r, jobs_w, results_r, results_w, stack_r, stack_w, *stdio = pipes
    enlarge_pipe(jobs_w.fileno())
    enlarge_pipe(results_w.fileno())
    enlarge_pipe(
        stack_w.fileno()
    )  # a dump of many threads is written whole, without waiting for us
    try:
        pair = socket_pair() if spec.segments is not None else None
    except BaseException:
        _close(*pipes)
        raise
    slot = ctx.RawValue(ctypes.c_longlong, 0)
    recall = ctx.RawValue(ctypes.c_longlong, 0)
    ring = new_ring(ctx)
    options: dict[str, Any] = {
        "target": worker_main,
        "args": (
            jobs_r,
            results_w,
            slot,
            ring,
            spec.withdrawn,
            recall,
            spec.initializer,
            spec.initargs,
            logging.getLogger().getEffectiveLevel(),
            (stdio[1], stdio[3]) if stdio else None,
            lifeline(),
            spec.preload,
            spec.thread_limit,
            stack_w,
            spec.memory_limit,
            pair[1] if pair is not None else None,
        ),
        "name": f"taskpool-worker-{wid}",
        "daemon": True,
    }
    try:
        if spec.template:
            template = acquire(spec.preload)
            process: Any = TemplateProcess(template, spec.terminating.is_set, **options)
        else:
            process = ctx.Process(**options)  # type: ignore[attr-defined]
        process.start()
    except BaseException:
        _close(*pipes)
        if pair is not None:
            pair[0].close()
            pair[1].close()
        raise
    death_fd = watch_death(process, spec.start_method)
    # The worker's ends: the parent keeps none, so that only the worker (and what its jobs start) holds them.
    _close(jobs_r, results_w, stack_w, *stdio[1::2])
    link = None
    if pair is not None and spec.segments is not None:
        pair[1].close()
        link = Link(pair[0], spec.segments, wid, False)
    w = Worker(
        wid,
        process,
        FrameReader(results_r.fileno(), link.land if link is not None else None),
        FrameWriter(jobs_w.fileno(), link.lend if link is not None else None),
        slot,
        ring,
        recall,
        results_r,
        jobs_w,
        death_fd,
        stack_r,
        oom_kills(spec.oom_paths),
        Capture(stdio[0], stdio[2]) if stdio else None,
        link,
    )
    return w


def _close(*conns: Connection) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.close()
