"""Every Python code block in README.md and docs/*.md runs as a program and exits 0.

Each block is a complete program (module-level functions, an ``if __name__ == "__main__":`` guard), run in
its own interpreter from a temporary directory, so that the docs cannot drift from the code. A block that is
deliberately not runnable on its own (it needs a Dask cluster, say) is preceded by an HTML comment
``<!-- not run: reason -->`` that says why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.DOTALL)
SKIP = re.compile(r"<!--\s*not run:\s*(?P<why>.+?)\s*-->")
RUN_TIMEOUT = 120


def _blocks() -> list[object]:
    params: list[object] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text.count("\n", 0, match.start("code")) + 1
            ident = f"{page.relative_to(ROOT)}:{line}"
            skip = SKIP.search(match.group("before"))
            marks = [pytest.mark.skip(reason=skip.group("why"))] if skip else []
            params.append(pytest.param(page, number, match.group("code"), id=ident, marks=marks))
    return params


def _pythonpath() -> str:
    # ROOT first; then whatever PYTHONPATH the tests run with, so that an example imports the same taskpool
    # as the tests do (a source tree put on PYTHONPATH, rather than whichever copy is installed).
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT), inherited]) if inherited else str(ROOT)


@pytest.mark.parametrize(("page", "number", "code"), _blocks())
def test_docs_example_runs(page: Path, number: int, code: str, tmp_path: Path) -> None:
    script = tmp_path / f"example_{number}.py"
    script.write_text(code + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        check=False,
    )
    assert result.returncode == 0, (
        f"code block {number} of {page.name} exited {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
