"""``--timeline``'s checks, before anything runs: which files it may write (no process started)."""

from __future__ import annotations

import argparse
import importlib.util
import io
from pathlib import Path

import pytest

from taskpool._cli import _timeline
from taskpool._cli._status import UsageError


def args(
    page: Path | str, *, output: str | None = None, overwrite: bool = False
) -> argparse.Namespace:
    return argparse.Namespace(
        timeline=str(page), output=output, input=None, overwrite=overwrite, function="m:f"
    )


def test_no_timeline_asked() -> None:
    assert _timeline.check_timeline(argparse.Namespace(timeline=None), None) is None


def test_the_page_and_the_png_beside_it(tmp_path: Path) -> None:
    files = _timeline.check_timeline(args(tmp_path / "run.html"), None)
    assert files is not None
    assert (files.page, files.overwrite, files.title) == (
        tmp_path / "run.html",
        False,
        "taskpool run m:f",
    )
    assert files.png == tmp_path / "run.png"


@pytest.mark.parametrize("name", ["run.png", "run", "run.jsonl"])
def test_the_page_must_be_html(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="name the HTML page"):
        _timeline.check_timeline(args(tmp_path / name), None)


def test_the_page_may_not_be_the_output(tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    with pytest.raises(UsageError, match="is the input or OUTPUT"):
        _timeline.check_timeline(args(page, output=str(page), overwrite=True), None)
    with pytest.raises(UsageError, match="is the input or OUTPUT"):
        _timeline.check_timeline(args(page, output=str(tmp_path / "run.png")), None)


@pytest.mark.parametrize("existing", ["run.html", "run.png"])
def test_an_existing_file_needs_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("")  # even empty: it is someone's file
    with pytest.raises(
        UsageError, match=f"the timeline file .*{existing} exists: pass --overwrite"
    ):
        _timeline.check_timeline(args(tmp_path / "run.html"), None)
    assert _timeline.check_timeline(args(tmp_path / "run.html", overwrite=True), None) is not None


def test_without_matplotlib_only_the_page_and_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    stderr = io.StringIO()
    files = _timeline.check_timeline(args(tmp_path / "run.html"), stderr)
    assert files is not None
    assert files.png is None
    assert "taskpool-py[timeline]" in stderr.getvalue()
