"""``python -m taskpool``: the same as the ``taskpool`` command (see `taskpool._cli.main`); runs in the main thread."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
