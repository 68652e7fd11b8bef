"""``python -m taskpool._cli``: the same as the ``taskpool`` command; runs in the main thread."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":  # pragma: no cover - run as a script only
    sys.exit(main())
