"""Entry point: ``python -m benchmarks [--quick] [--only NAMES] [--repeats N] [--at REV]... [--out DIR]``.

Runs in the harness parent; see `benchmarks._harness` for what happens where.
"""

from __future__ import annotations

import sys

from benchmarks._harness import main

if __name__ == "__main__":
    sys.exit(main())
