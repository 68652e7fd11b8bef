"""taskpool: a typed, crash-proof process pool.

Public names are re-exported here; every module whose name starts with an underscore is private.
"""

from __future__ import annotations

from ._compat import AsyncResult as AsyncResult
from ._compat import MapResult as MapResult
from ._compat import Pool as Pool
from ._errors import DaskConnectionError as DaskConnectionError
from ._errors import InitializerError as InitializerError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import PoolClosedError as PoolClosedError
from ._errors import RemoteTraceback as RemoteTraceback
from ._errors import SerializationError as SerializationError
from ._errors import TaskpoolError as TaskpoolError
from ._errors import WorkerCrashedError as WorkerCrashedError
from ._events import Event as Event
from ._events import EventKind as EventKind
from ._future import JobFuture as JobFuture
from ._job import JobOptions as JobOptions
from ._logging import get_logger as get_logger
from ._pool import IMapIterator as IMapIterator
from ._pool import PoolState as PoolState
from ._pool import PoolView as PoolView
from ._pool import TaskPool as TaskPool
from ._progress import as_completed as as_completed
from ._retry import Retry as Retry
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

__version__ = "0.1.0"

__all__ = (
    "AsyncResult",
    "DaskConnectionError",
    "Event",
    "EventKind",
    "IMapIterator",
    "InitializerError",
    "JobFuture",
    "JobOptions",
    "JobTimeoutError",
    "MapResult",
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
    "SharedValue",
    "Spawner",
    "Task",
    "TaskPool",
    "TaskpoolError",
    "WorkerCrashedError",
    "as_completed",
    "get_logger",
    "spawn",
    "task",
)
