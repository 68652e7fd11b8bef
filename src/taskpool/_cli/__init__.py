"""The ``taskpool`` command: ``taskpool demo`` and ``taskpool run MODULE:FUNCTION``.

`main` runs in the main thread. The modules of this package, one responsibility each:

- `_args`: the parser and the validators of option values.
- `_demo`: ``taskpool demo``.
- `_run`: ``taskpool run``: its threads and processes, the run loop, signals, the summary.
- `_input`: reading the input (JSON Lines or ``--range``) on the reader thread, in chunks, against credits.
- `_resume`: ``--resume``: an earlier run's records, and the set of inputs it finished.
- `_output`: opening OUTPUT by the safety rules (never overwritten unawares, never the input, locked) and
  writing it whole; `_summary`: the counts and the summary line on stderr.
- `_records`: the output lines; `_resolve`: importing ``MODULE:FUNCTION``; `_status`: exit statuses.
- `_worker`: what the jobs run in the workers. Workers import it (and so this package) for every job's
  function, so this module imports nothing at import time: `main` imports the rest when it runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``taskpool`` console script and ``python -m taskpool``; returns the exit status (main thread)."""
    from ._args import build_parser
    from ._status import EXIT_INTERRUPTED, EXIT_USAGE, PROG, UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import demo_command

            return demo_command(args, sys.stdout)
        from ._run import run_command

        return run_command(args)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
