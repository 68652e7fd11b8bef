"""taskpool: a typed, crash-proof process pool.

Public names are re-exported here; every module whose name starts with an underscore is private.

Importing taskpool is cheap and has no side effects: each public name is imported from its module on first
use. That matters for worker processes, which import only the worker's own modules, not the whole API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._compat import AsyncResult as AsyncResult
    from ._compat import MapResult as MapResult
    from ._compat import Pool as Pool
    from ._core.aio import as_completed_async as as_completed_async
    from ._core.backup import Median as Median
    from ._core.events import Event as Event
    from ._core.events import EventKind as EventKind
    from ._core.future import JobFuture as JobFuture
    from ._core.job import JobOptions as JobOptions
    from ._core.ledger import PoolState as PoolState
    from ._core.progress import as_completed as as_completed
    from ._core.retry import Retry as Retry
    from ._errors import CheckpointError as CheckpointError
    from ._errors import DaskConnectionError as DaskConnectionError
    from ._errors import ForkedPoolError as ForkedPoolError
    from ._errors import InitializerError as InitializerError
    from ._errors import JobTimeoutError as JobTimeoutError
    from ._errors import PoolClosedError as PoolClosedError
    from ._errors import RemoteTraceback as RemoteTraceback
    from ._errors import SerializationError as SerializationError
    from ._errors import SharedStateGoneError as SharedStateGoneError
    from ._errors import TaskpoolError as TaskpoolError
    from ._errors import WorkerCrashedError as WorkerCrashedError
    from ._errors import WorkerStartError as WorkerStartError
    from ._pool.imap import IMapIterator as IMapIterator
    from ._pool.pool import TaskPool as TaskPool
    from ._pool.submitter import PoolView as PoolView
    from ._runtime.joblog import get_logger as get_logger
    from ._runtime.seeding import job_rng as job_rng
    from ._runtime.seeding import job_seed as job_seed
    from ._shared import SharedArray as SharedArray
    from ._shared import SharedBarrier as SharedBarrier
    from ._shared import SharedCounter as SharedCounter
    from ._shared import SharedDict as SharedDict
    from ._shared import SharedEvent as SharedEvent
    from ._shared import SharedList as SharedList
    from ._shared import SharedLock as SharedLock
    from ._shared import SharedNamespace as SharedNamespace
    from ._shared import SharedQueue as SharedQueue
    from ._shared import SharedSemaphore as SharedSemaphore
    from ._shared import SharedState as SharedState
    from ._shared import SharedValue as SharedValue
    from ._spawn import Spawner as Spawner
    from ._spawn import spawn as spawn
    from ._task import Task as Task
    from ._task import task as task
    from ._timeline import Timeline as Timeline
    from ._timeline import TimelineAttempt as TimelineAttempt
    from ._timeline import TimelineWorker as TimelineWorker

__version__ = "0.2.0"

# Where each public name lives; `__getattr__` imports it from there the first time it is asked for.
_EXPORTS = {
    "AsyncResult": "._compat",
    "MapResult": "._compat",
    "Pool": "._compat",
    "CheckpointError": "._errors",
    "DaskConnectionError": "._errors",
    "ForkedPoolError": "._errors",
    "InitializerError": "._errors",
    "WorkerStartError": "._errors",
    "JobTimeoutError": "._errors",
    "PoolClosedError": "._errors",
    "RemoteTraceback": "._errors",
    "SerializationError": "._errors",
    "SharedStateGoneError": "._errors",
    "TaskpoolError": "._errors",
    "WorkerCrashedError": "._errors",
    "Event": "._core.events",
    "EventKind": "._core.events",
    "JobFuture": "._core.future",
    "JobOptions": "._core.job",
    "get_logger": "._runtime.joblog",
    "job_rng": "._runtime.seeding",
    "job_seed": "._runtime.seeding",
    "IMapIterator": "._pool.imap",
    "PoolState": "._core.ledger",
    "PoolView": "._pool.submitter",
    "TaskPool": "._pool.pool",
    "as_completed": "._core.progress",
    "as_completed_async": "._core.aio",
    "Retry": "._core.retry",
    "Median": "._core.backup",
    "SharedArray": "._shared",
    "SharedBarrier": "._shared",
    "SharedCounter": "._shared",
    "SharedDict": "._shared",
    "SharedEvent": "._shared",
    "SharedList": "._shared",
    "SharedLock": "._shared",
    "SharedNamespace": "._shared",
    "SharedQueue": "._shared",
    "SharedSemaphore": "._shared",
    "SharedState": "._shared",
    "SharedValue": "._shared",
    "Spawner": "._spawn",
    "spawn": "._spawn",
    "Task": "._task",
    "task": "._task",
    "Timeline": "._timeline",
    "TimelineAttempt": "._timeline",
    "TimelineWorker": "._timeline",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taskpool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = (
    "AsyncResult",
    "CheckpointError",
    "DaskConnectionError",
    "Event",
    "EventKind",
    "ForkedPoolError",
    "IMapIterator",
    "InitializerError",
    "JobFuture",
    "JobOptions",
    "JobTimeoutError",
    "MapResult",
    "Median",
    "Pool",
    "PoolClosedError",
    "PoolState",
    "PoolView",
    "RemoteTraceback",
    "Retry",
    "SerializationError",
    "SharedArray",
    "SharedBarrier",
    "SharedCounter",
    "SharedDict",
    "SharedEvent",
    "SharedList",
    "SharedLock",
    "SharedNamespace",
    "SharedQueue",
    "SharedSemaphore",
    "SharedState",
    "SharedStateGoneError",
    "SharedValue",
    "Spawner",
    "Task",
    "TaskPool",
    "TaskpoolError",
    "Timeline",
    "TimelineAttempt",
    "TimelineWorker",
    "WorkerCrashedError",
    "WorkerStartError",
    "as_completed",
    "as_completed_async",
    "get_logger",
    "job_rng",
    "job_seed",
    "spawn",
    "task",
)
