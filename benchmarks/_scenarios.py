"""What each scenario measures, in which units, at which sizes: plain data shared by both processes.

The harness parent (`benchmarks._harness`) reads these specs to plan runs, pass sizes and timeouts to each
child, and label and compare results; the child runner (`benchmarks._run`) reads the same spec to know what to
report. Nothing here starts a process or imports a pool library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["BASELINE", "SCENARIOS", "Metric", "Scenario"]

#: The contender every ratio is taken against: the stdlib pool with the start method it uses by default on
#: Linux before Python 3.14, i.e. what most code that taskpool replaces runs on today.
BASELINE = "mp.Pool-fork"


@dataclass(frozen=True, slots=True)
class Metric:
    """One number a scenario reports for each contender."""

    name: str
    unit: str
    higher_is_better: bool

    def ratio(self, value: float, baseline: float) -> float | None:
        """How much better `value` is than `baseline` (above 1 is better, whatever the direction)."""
        if value <= 0 or baseline <= 0:
            return None
        return value / baseline if self.higher_is_better else baseline / value


@dataclass(frozen=True, slots=True)
class Scenario:
    """One benchmark scenario.

    Attributes:
        name: what `--only` and the result files call it.
        title: a short human title for tables and charts.
        description: what is measured, in one or two sentences.
        metrics: the reported metrics; the first is the one charted and compared by default.
        full: sizes for a full run (passed to the child as its parameters).
        quick: sizes for `--quick`.
        timeout_s: the child's wall-clock limit in a full run; `quick_timeout_s` in a quick one.
        baseline: "mp" compares with `BASELINE`; "self" compares a contender's variants with its own plain
            row (variant ""); None reports no ratio.
        requires: importable modules the scenario itself needs (numpy); without one, every contender is
            skipped with a note.
    """

    name: str
    title: str
    description: str
    metrics: tuple[Metric, ...]
    full: dict[str, int] = field(default_factory=dict)
    quick: dict[str, int] = field(default_factory=dict)
    timeout_s: float = 120.0
    quick_timeout_s: float = 30.0
    baseline: Literal["mp", "self"] | None = "mp"
    requires: tuple[str, ...] = ()

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def params(self, quick: bool) -> dict[str, int]:
        return dict(self.quick if quick else self.full)

    def timeout(self, quick: bool) -> float:
        return self.quick_timeout_s if quick else self.timeout_s


_US_PER_JOB = Metric("us_per_job", "µs/job", higher_is_better=False)
_MB_PER_S = Metric("mb_per_s", "MB/s", higher_is_better=True)

_ALL = (
    Scenario(
        "tiny",
        "Tiny jobs, one async submit each",
        "Submit N no-op jobs one by one (each its own async call), then wait for all: the per-job "
        "overhead of the pool. joblib batches automatically.",
        (_US_PER_JOB,),
        full={"jobs": 20_000},
        quick={"jobs": 2_000},
        timeout_s=180.0,
    ),
    Scenario(
        "map",
        "map over 1M ints",
        "map a trivial function over a list of ints with each library's automatic chunksize (the "
        "multiprocessing.Pool rule where a library has none).",
        (Metric("items_per_s", "items/s", higher_is_better=True),),
        full={"items": 1_000_000},
        quick={"items": 200_000},
        timeout_s=180.0,
    ),
    Scenario(
        "cpu",
        "CPU-bound jobs, speedup over serial",
        "Run pure-Python loops calibrated once in the parent to a fixed serial duration each, one job "
        "per loop; speedup = serial time (one loop timed in the child just before, times the job "
        "count) / pool time (ideal: 2.0 with 2 workers).",
        (Metric("speedup", "x serial", higher_is_better=True),),
        full={"jobs": 8, "job_ms": 250},
        quick={"jobs": 4, "job_ms": 100},
        timeout_s=90.0,
    ),
    Scenario(
        "startup",
        "Start + 1 job + shutdown",
        "Create the pool, run one no-op job to completion, shut the pool down and wait for it; "
        "libraries are imported before the clock starts.",
        (Metric("ms", "ms", higher_is_better=False),),
        timeout_s=60.0,
    ),
    Scenario(
        "large",
        "Large arguments (8 MB each)",
        "Submit jobs that each take an 8 MB bytes argument (random, so nothing compresses it) and "
        "return its length; throughput of argument data.",
        (_MB_PER_S,),
        full={"jobs": 50, "mb": 8},
        quick={"jobs": 10, "mb": 8},
    ),
    Scenario(
        "imap10m",
        "Lazy imap over 10M items",
        "imap a trivial function over a generator of ints with chunksize 1000, consuming results as "
        "they come; the child's peak RSS shows whether the input or the results pile up in memory.",
        (
            Metric("peak_rss_mb", "MB", higher_is_better=False),
            Metric("items_per_s", "items/s", higher_is_better=True),
        ),
        full={"items": 10_000_000, "chunksize": 1000},
        quick={"items": 1_000_000, "chunksize": 1000},
        timeout_s=300.0,
        quick_timeout_s=60.0,
    ),
    Scenario(
        "events",
        "Event handlers: per-job overhead",
        "taskpool submit of N no-op jobs without handlers, then with a job_started and a "
        "job_succeeded handler subscribed (waiting until the handlers saw every event).",
        (_US_PER_JOB,),
        full={"jobs": 20_000},
        quick={"jobs": 2_000},
        baseline="self",
    ),
    Scenario(
        "progress",
        "Progress bar: per-item overhead",
        "taskpool map over N ints without and with progress=True (the bar writes to os.devnull).",
        (Metric("us_per_item", "µs/item", higher_is_better=False),),
        full={"items": 200_000},
        quick={"items": 50_000},
        baseline="self",
    ),
    Scenario(
        "numpy_args",
        "numpy arrays as arguments (64 MB each)",
        "Submit jobs that each take a distinct 64 MB float64 array (random) and return its sum; "
        "throughput of argument data. Every worker has imported numpy before the clock starts.",
        (_MB_PER_S,),
        full={"jobs": 16, "mb": 64},
        quick={"jobs": 2, "mb": 1},
        requires=("numpy",),
    ),
    Scenario(
        "numpy_results",
        "numpy arrays as results (64 MB each)",
        "Submit jobs that each make a new 64 MB float64 array (np.full) and return it; throughput of "
        "result data, the making included (the same for everyone).",
        (_MB_PER_S,),
        full={"jobs": 16, "mb": 64},
        quick={"jobs": 2, "mb": 1},
        requires=("numpy",),
    ),
    Scenario(
        "crash",
        "Worker crash: recovery and replacement",
        "ms: from submitting a job that calls os._exit(1) until its future has failed AND a following "
        "job has completed (the pool is usable again). replace_ms: from the os._exit itself until a "
        "worker that was not there before (the replacement) starts a job. Medians over several crashes.",
        (
            Metric("ms", "ms", higher_is_better=False),
            Metric("replace_ms", "ms", higher_is_better=False),
        ),
        full={"crashes": 3},
        quick={"crashes": 1},
        timeout_s=90.0,
        baseline=None,
    ),
    Scenario(
        "stragglers",
        "Stragglers: makespan",
        "Submit N sleeping jobs of 20 ms each, 2 of which (picked by a seeded random draw) stall for "
        "2 s on their first run, and wait for all. taskpool runs the batch again with backup copies of "
        "slow jobs (options(backup_after=0.2)) when it has them; ratio against its plain run.",
        (Metric("makespan_s", "s", higher_is_better=False),),
        full={
            "jobs": 200,
            "job_ms": 20,
            "stall_ms": 2000,
            "stalls": 2,
            "seed": 7,
            "backup_ms": 200,
        },
        quick={"jobs": 20, "job_ms": 20, "stall_ms": 200, "stalls": 2, "seed": 7, "backup_ms": 50},
        baseline="self",
    ),
    Scenario(
        "latency",
        "Round trip of a lone job",
        "One blocking call of a no-op on an idle, warmed-up pool; median of many calls.",
        (Metric("us", "µs", higher_is_better=False),),
        full={"calls": 2_000},
        quick={"calls": 300},
        timeout_s=90.0,
    ),
    Scenario(
        "cli",
        "taskpool run over a range",
        "`taskpool run benchmarks._jobs:square --range 0 N -o OUT --workers 2 --chunksize 100` (the "
        "chunksize its help suggests for tiny jobs) as a subprocess: wall time and the peak RSS of the "
        "largest process of its tree.",
        (
            Metric("wall_s", "s", higher_is_better=False),
            Metric("peak_rss_mb", "MB", higher_is_better=False),
        ),
        full={"stop": 1_000_000, "chunksize": 100},
        quick={"stop": 200_000, "chunksize": 100},
        timeout_s=180.0,
        baseline=None,
    ),
)

#: Every scenario by name, in the order they run and are reported.
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}
