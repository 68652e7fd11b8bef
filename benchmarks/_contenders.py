"""The contenders: which pool library in which configuration, and what the harness needs to know about it.

The registry (`CONTENDERS`) is plain data that the harness parent reads to plan a run: which scenarios a
contender takes part in, which packages it needs, and why it sits out the others. Each entry builds its
adapter (`benchmarks._adapters`, `benchmarks._ray`) only when a child runner asks for it, so importing this
module imports no pool library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks._adapter import Adapter
from benchmarks._adapters import (
    Billiard,
    Dask,
    Joblib,
    JoblibTaskpool,
    Mpire,
    MpPool,
    Pebble,
    Taskpool,
    loky_executor,
    ppe,
)

__all__ = ["CONTENDERS", "ContenderSpec"]


def _ray() -> Adapter:
    from benchmarks._ray import Ray  # imports ray: only in the child that runs this contender

    return Ray()


_ARRAYS = frozenset({"numpy_args", "numpy_results"})
_CORE = frozenset({"tiny", "map", "cpu", "startup", "large", "latency", "stragglers"}) | _ARRAYS
_NO_CRASH = "the stdlib Pool never fails the job: its result waits forever"
_NO_IMAP = "Executor.map submits the whole input at once"


@dataclass(frozen=True, slots=True)
class ContenderSpec:
    """What the parent knows about a contender without importing its library.

    Attributes:
        name: what `--only` and the result files call it; `family` (the part before "-") selects a group.
        label: the library and configuration, for humans.
        make: builds the adapter (in the child).
        scenarios: the scenarios it takes part in.
        requires: importable modules it needs; a missing one skips the contender with a note.
        scale: per scenario, a factor on the scenario's sizes, for contenders whose per-job cost would
            make the full size take minutes; rates and per-job costs stay comparable.
        notes: per scenario it sits out, why.
        quick: whether `--quick` runs it when `--only` does not name it (False for a contender whose
            every sample takes many seconds to start).
        extra_timeout_s: seconds added to every scenario's timeout for this contender (its start).
    """

    name: str
    label: str
    make: Callable[[], Adapter]
    scenarios: frozenset[str]
    requires: tuple[str, ...] = ()
    scale: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    quick: bool = True
    extra_timeout_s: float = 0.0

    @property
    def family(self) -> str:
        return self.name.split("-", 1)[0]


_SPECS = (
    ContenderSpec(
        "taskpool-forkserver",
        "taskpool TaskPool (process, forkserver)",
        lambda: Taskpool("process", "forkserver"),
        _CORE | {"imap10m", "events", "progress", "crash"},
    ),
    ContenderSpec(
        "taskpool-fork",
        "taskpool TaskPool (process, fork)",
        lambda: Taskpool("process", "fork"),
        _CORE | {"imap10m", "events", "progress", "crash"},
    ),
    ContenderSpec(
        "taskpool-thread",
        "taskpool TaskPool (thread backend)",
        lambda: Taskpool("thread", None),
        (_CORE - {"cpu", "large"} - _ARRAYS) | {"events", "progress"},
        notes={
            "cpu": "threads share the GIL: no speedup to measure",
            "large": "threads pass a reference: no argument data moves",
            "numpy_args": "threads pass a reference: no argument data moves",
            "numpy_results": "threads pass a reference: no result data moves",
            "crash": "os._exit in a thread ends the whole process",
        },
    ),
    ContenderSpec(
        "taskpool-dask",
        "taskpool TaskPool (dask backend)",
        lambda: Taskpool("dask", None),
        _CORE | {"crash"},
        requires=("distributed",),
        scale={"tiny": 0.1, "map": 0.25, "latency": 0.1},
    ),
    ContenderSpec(
        "taskpool-cli",
        "taskpool run (command line)",
        lambda: Adapter(),
        frozenset({"cli"}),
    ),
    ContenderSpec(
        "mp.Pool-fork",
        "multiprocessing.Pool (fork)",
        lambda: MpPool("fork"),
        _CORE | {"imap10m"},
        notes={"crash": _NO_CRASH},
    ),
    ContenderSpec(
        "mp.Pool-forkserver",
        "multiprocessing.Pool (forkserver)",
        lambda: MpPool("forkserver"),
        _CORE | {"imap10m"},
        notes={"crash": _NO_CRASH},
    ),
    ContenderSpec(
        "PPE-forkserver",
        "concurrent.futures.ProcessPoolExecutor (forkserver)",
        lambda: ppe("forkserver"),
        _CORE | {"crash"},
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "PPE-fork",
        "concurrent.futures.ProcessPoolExecutor (fork)",
        lambda: ppe("fork"),
        _CORE | {"crash"},
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "loky",
        "loky ProcessPoolExecutor",
        loky_executor,
        _CORE | {"crash"},
        requires=("loky",),
        notes={"imap10m": _NO_IMAP},
    ),
    ContenderSpec(
        "joblib",
        "joblib Parallel (loky backend)",
        Joblib,
        _CORE | {"crash"},
        requires=("joblib",),
        # Every call is a whole Parallel run (about 10 ms): fewer calls give the same median.
        scale={"latency": 0.1},
        notes={"imap10m": "Parallel has no lazy, ordered imap over a generator"},
    ),
    ContenderSpec(
        "joblib-taskpool",
        "joblib Parallel (taskpool backend)",
        JoblibTaskpool,
        _CORE | {"crash"},
        requires=("joblib",),
        scale={"latency": 0.1},
        notes={"imap10m": "Parallel has no lazy, ordered imap over a generator"},
    ),
    ContenderSpec(
        "pebble",
        "pebble ProcessPool",
        Pebble,
        _CORE | {"crash"},
        requires=("pebble",),
        notes={"imap10m": "ProcessPool.map submits the whole input at once"},
    ),
    ContenderSpec(
        "mpire",
        "mpire WorkerPool (fork)",
        Mpire,
        _CORE | {"imap10m"},
        requires=("mpire",),
        notes={"crash": "the job fails with RuntimeError, but the next job never completes"},
    ),
    ContenderSpec(
        "billiard",
        "billiard Pool",
        Billiard,
        _CORE | {"imap10m", "crash"},
        requires=("billiard",),
    ),
    ContenderSpec(
        "dask",
        "dask.distributed LocalCluster + Client",
        Dask,
        _CORE,
        requires=("distributed",),
        scale={"tiny": 0.1, "map": 0.25, "latency": 0.1},
        notes={
            "crash": "a nanny restarts the worker and reruns the task until it is marked KilledWorker"
        },
    ),
    ContenderSpec(
        "ray",
        "Ray tasks on a local instance (num_cpus=2)",
        _ray,
        (_CORE - {"map"}) | {"crash"},
        requires=("ray",),
        # About 0.5 ms per task: fewer tasks give the same per-job cost.
        scale={"tiny": 0.1, "latency": 0.1},
        notes={
            "map": "no map of its own",
            "imap10m": "no lazy, ordered imap over a generator",
        },
        # ray.init and ray.shutdown take 5 s in every sample on a quiet machine, 20 s and more on a busy one.
        quick=False,
        extra_timeout_s=60.0,
    ),
)

#: Every contender by name, in report order.
CONTENDERS: dict[str, ContenderSpec] = {s.name: s for s in _SPECS}
