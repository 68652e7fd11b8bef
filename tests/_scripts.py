"""Running a test's own Python script in a fresh interpreter, from the project root, with this tree's
``src`` and the tests importable (runs in the test process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The environment such a script runs in.
SCRIPT_ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}


def run_script(path: Path, text: str, *args: str, timeout: float) -> str:
    """Write ``text`` to ``path``, run it with ``args``, and return what it printed (it must succeed)."""
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env=SCRIPT_ENV,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
