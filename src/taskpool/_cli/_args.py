"""The command line of ``taskpool``: its parser, its subcommands' options, and the validators of their values.

Runs in the main thread, before anything else the command does.
"""

from __future__ import annotations

import argparse

from .. import __version__
from ._status import PROG

__all__ = ["RUN_EPILOG", "build_parser"]


def _whole_number(text: str, least: int) -> int:
    """``text`` as an int of at least ``least``; raises `argparse.ArgumentTypeError` otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    """A count of at least 1 (workers, jobs, chunk size)."""
    return _whole_number(text, 1)


def _count(text: str) -> int:
    """A count of at least 0 (retries)."""
    return _whole_number(text, 0)


def _seconds(text: str) -> float:
    """A finite duration in seconds, greater than 0 (NaN and infinity are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number > 0), not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds (a finite number > 0), not {text!r}")
    return value


def _backup_after(text: str) -> object:
    """``--backup-after``: seconds (``2.5``), or a multiple of the median duration (``3x``: `Median(3.0)`)."""
    if text.lower().endswith("x"):
        from .._core.backup import Median

        try:
            return Median(float(text[:-1]))
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"expected a positive multiple of the median such as 3x, not {text!r}"
            ) from None
    return _seconds(text)


def _integer(text: str) -> int:
    """Any whole number, negative too (the bounds of ``--range``)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None


RUN_EPILOG = """\
input:   one JSON value per line. An array is the positional arguments, an object the keyword
         arguments, anything else the single argument: [1, 2] -> f(1, 2); {"x": 1} -> f(x=1); 3 -> f(3).
         Blank lines are skipped. A line that cannot be decoded becomes an error record ("InputError").
output:  one JSON line per input, in input order unless --unordered; "line" is the input's line number
         (with --range: "value", the number passed):
           {"index": 0, "line": 1, "ok": true, "result": ...}
           {"index": 1, "line": 2, "ok": false, "error": {"type": ..., "message": ..., "traceback": ...}}
safety:  a non-empty OUTPUT is never replaced without --overwrite (or continued without --resume), OUTPUT
         may not be the input, and one run at a time writes an OUTPUT (it is locked). What jobs print
         goes to stderr: stdout carries the records only. The run ends with a summary line on stderr.
exit:    0 all ok; 1 some inputs failed; 2 usage or input error, an OUTPUT the safety rules protect, or
         an OUTPUT that cannot be written (a full disk: finish with --resume); 130 interrupted by
         Ctrl-C, 143 by SIGTERM (the lines written are kept: finish with --resume).
example: taskpool run taskpool.examples:collatz_steps --range 1 100001 --chunksize 200 -o steps.jsonl
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``taskpool`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run Python functions on a crash-proof process pool."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="time CPU-bound jobs serially and on a pool, and show a callback",
        description="Run a CPU-bound example serially and then on a TaskPool, print both timings and the "
        "speedup, and show an apply_async callback running in the parent. Needs no input.",
    )
    demo.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="worker processes (default: the CPU count, as taskpool run)",
    )
    demo.add_argument("--jobs", type=_positive_int, default=8, help="how many jobs (default: 8)")
    demo.add_argument(
        "--seconds",
        type=_seconds,
        default=0.25,
        help="about how long each job runs (default: 0.25)",
    )

    run = commands.add_parser(
        "run",
        help="apply MODULE:FUNCTION to every line of JSON Lines input (or to --range)",
        description="Call MODULE:FUNCTION once per input on a TaskPool, and write one JSON line per input. "
        "The input is read lazily and results are written as they are ready, so any input length runs "
        "in bounded memory. An input whose call fails becomes an error record; the run goes on.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "function",
        metavar="MODULE:FUNCTION",
        help="the function to call, importable from the current directory or sys.path "
        "(e.g. taskpool.examples:collatz_steps), or path/to/file.py:FUNCTION",
    )
    run.add_argument(
        "input", metavar="INPUT", nargs="?", help="JSON Lines file; '-' or none: stdin"
    )
    run.add_argument(
        "--range",
        nargs=2,
        type=_integer,
        metavar=("START", "STOP"),
        help="call FUNCTION(n) for each integer START <= n < STOP instead of reading INPUT",
    )
    run.add_argument(
        "-o", "--output", metavar="OUTPUT", help="where the JSON lines go (default: stdout)"
    )
    run.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="workers (default: the CPUs this process may use)",
    )
    run.add_argument(
        "--backend",
        choices=("process", "thread", "inline", "dask"),
        default="process",
        help="process (default; CPU-bound work), thread (I/O-bound work), inline (debugging), dask",
    )
    run.add_argument(
        "--address", help="the Dask scheduler address, e.g. tcp://host:8786 (--backend dask)"
    )
    run.add_argument(
        "--start-method",
        choices=("forkserver", "spawn", "fork"),
        default=None,
        help="how worker processes start (default: forkserver where the platform has it, spawn elsewhere)",
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="seconds a job may run; past it, it fails with JobTimeoutError and its worker is replaced",
    )
    run.add_argument(
        "--retries",
        type=_count,
        default=0,
        metavar="N",
        help="run a failing input up to N more times: Retry(attempts=N+1) that also covers a worker "
        "crash (on_crash) and a timeout (on_timeout); a result JSON cannot encode is not retried",
    )
    run.add_argument(
        "--backup-after",
        type=_backup_after,
        default=None,
        metavar="SECONDS|Nx",
        help="run a second copy of a job still running after SECONDS (or N times the median duration of "
        "the run's jobs, e.g. 3x) on an idle worker; the first copy to finish is kept, the other stopped "
        "(process backend)",
    )
    run.add_argument(
        "--chunksize",
        type=_positive_int,
        default=1,
        help="inputs per job (default: 1). Larger amortizes overhead for tiny jobs (try 100); "
        "--timeout then applies to the whole chunk, and a crash or timeout fails or reruns it whole",
    )
    run.add_argument(
        "--seed",
        type=_count,
        default=None,
        metavar="N",
        help="reproducible randomness: each input gets its own seed from N and its index (what "
        "taskpool.job_seed() returns), and random (and numpy's legacy generator) is seeded from it",
    )
    run.add_argument(
        "--unordered",
        action="store_true",
        help="write each line as soon as its job finishes, in any order (default: input order)",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: only when stderr is a terminal)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue into an existing OUTPUT: skip the inputs it has a record for (ok or not), drop a "
        "torn last line, and append the rest",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing non-empty OUTPUT (without it, or --resume, the run refuses to start)",
    )
    run.add_argument(
        "--timeline",
        metavar="PAGE.html",
        help="draw the run: which worker ran which input when, failures, retries, crashes, timeouts and "
        "how busy each worker was, as PAGE.html (self-contained) and PAGE.png beside it (needs "
        "matplotlib); existing files are replaced only with --overwrite",
    )
    run.add_argument(
        "--read-ahead",
        type=_positive_int,
        default=64,
        metavar="MIB",
        help="read at most about MIB mebibytes of input ahead of the records written (default: 64; "
        "one input is always read, however large)",
    )
    return parser
