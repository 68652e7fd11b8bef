"""``taskpool run --backup-after``: a stalled input gets a second copy on an idle worker, and the run ends.

The stalled input sleeps ten minutes on its first run; the command's timeout is one minute. So a run that
ends, with every record ok, shows that the copy ran and its result was kept, and that the stalled original
did not hold the run up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskpool import _cli as cli

from .test_cli import JOBS, records, taskpool

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("after", ["0.3", "3x"])
def test_a_stalled_input_is_backed_up_and_the_run_ends(tmp_path: Path, after: str) -> None:
    marker = tmp_path / "stalled"
    lines = json.dumps([str(marker)]) + "\n" + "[null]\n" * 9
    result = taskpool(
        "run", f"{JOBS}:stall_once", "--workers", "2", "--backup-after", after, stdin=lines
    )
    assert result.returncode == 0, result.stderr
    got = records(result.stdout)
    assert [r["index"] for r in got] == list(range(10))
    assert all(r["ok"] and r["result"] == "ok" for r in got)
    assert marker.exists()  # the first copy did start, and stalled


@pytest.mark.parametrize("value", ["0", "-1", "soon", "0x", "-2x", "x"])
def test_a_bad_backup_after_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", f"{JOBS}:square", "--range", "0", "3", "--backup-after", value])
    assert exit_.value.code == 2
    assert "--backup-after" in capsys.readouterr().err


def test_backups_the_backend_cannot_run_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", f"{JOBS}:square", "--range", "0", "3", "--backend", "thread"]
    assert cli.main([*argv, "--backup-after", "1"]) == 2
    assert "backup" in capsys.readouterr().err
