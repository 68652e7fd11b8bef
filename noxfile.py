"""nox sessions: the test suite under each supported CPython that this machine has.

`nox -s tests` installs `.[dev]` and runs pytest once per CPython 3.10 to 3.13 found, as `tests-3.10` and so on
(`nox -l` lists them; arguments after `--` go to pytest). A version is found as `python3.X` on PATH, or in
pyenv's versions directory when pyenv's shim for it is not selected; versions not found are left out rather
than failed, so the sessions run on any machine. `.ci/run` runs some of them.

Runs in the nox process (discovery at import) and in the session virtualenvs (pytest).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

# The versions classifiers in pyproject.toml declare; keep the two lists together.
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")

nox.options.sessions = ["tests"]


def _reports_version(executable: str, version: str) -> bool:
    """Whether `executable` runs and is CPython `version` (pyenv's shims exist for versions not selected)."""
    try:
        proc = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == version


def _pyenv_candidates(version: str) -> list[Path]:
    """`python3.X` of each pyenv-installed CPython `version` (`3.X.N` only), newest patch first."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = re.compile(rf"{re.escape(version)}\.(\d+)")
    found: list[tuple[int, Path]] = []
    if (root / "versions").is_dir():
        for entry in (root / "versions").iterdir():
            match = pattern.fullmatch(entry.name)
            executable = entry / "bin" / f"python{version}"
            if match and executable.is_file():
                found.append((int(match.group(1)), executable))
    return [path for _, path in sorted(found, reverse=True)]


def find_interpreter(version: str) -> str | None:
    """The path of a working `python{version}`, or None when this machine has none."""
    on_path = shutil.which(f"python{version}")
    if on_path and _reports_version(on_path, version):
        return on_path
    for candidate in _pyenv_candidates(version):
        if _reports_version(str(candidate), version):
            return str(candidate)
    return None


def _discover() -> list[str]:
    """The supported versions found; each one's directory goes first on PATH so nox resolves `3.X` to it."""
    found = []
    for version in SUPPORTED:
        executable = find_interpreter(version)
        if executable is None:
            continue
        found.append(version)
        if shutil.which(f"python{version}") != executable:
            directory = str(Path(executable).parent)
            os.environ["PATH"] = os.pathsep.join([directory, os.environ.get("PATH", "")])
    return found


PYTHONS = _discover()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Install the package with its development tools and run the test suite."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)
