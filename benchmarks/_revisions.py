"""taskpool at other git revisions as contenders: export, naming, the import check and the comparison.

Runs in the harness parent only. ``--at REV`` exports REV's ``src/`` with ``git archive`` (which leaves the
repository, its branches and its worktrees untouched, and leaves nothing to prune if the run is killed) into
one temporary directory, removed when the run ends, on Ctrl-C too. Every selected taskpool contender then gets
a twin named ``NAME@COMMIT`` whose child runner finds that tree first on PYTHONPATH, which the pool's workers
inherit. The harness, the scenarios, the adapters and the job functions stay the working tree's for both
twins, so that only taskpool itself differs between them.
"""

from __future__ import annotations

import compileall
import contextlib
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from benchmarks._contenders import ContenderSpec
    from benchmarks._scenarios import Metric

__all__ = [
    "Revision",
    "base_name",
    "commit_of",
    "compare",
    "exported",
    "foreign_import",
    "taskpool_src",
    "twin_name",
    "twins",
    "working_tree",
]

#: Separates a contender's name from the revision it runs at: ``taskpool-fork@1a2b3c4``.
SEP = "@"


@dataclass(frozen=True, slots=True)
class Revision:
    """One exported revision.

    Attributes:
        rev: the revision as given on the command line (a branch, a tag, a commit...).
        commit: its abbreviated commit hash, which names the twins.
        subject: the commit's subject line, for the report.
        src: the exported ``src/`` directory the twins import taskpool from.
    """

    rev: str
    commit: str
    subject: str
    src: Path

    def describe(self) -> dict[str, str]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "subject": self.subject,
            "src": str(self.src),
        }


def twin_name(name: str, commit: str) -> str:
    """The name of contender `name` running taskpool at `commit`."""
    return f"{name}{SEP}{commit}"


def base_name(name: str) -> str:
    """The registry name of a contender, whatever revision it runs at."""
    return name.partition(SEP)[0]


def commit_of(name: str) -> str:
    """The commit a contender runs taskpool at; "" for the working tree."""
    return name.partition(SEP)[2]


def twins(specs: Sequence[ContenderSpec], revisions: Sequence[Revision]) -> list[ContenderSpec]:
    """`specs`, each taskpool contender followed by its twin at every revision."""
    out: list[ContenderSpec] = []
    for spec in specs:
        out.append(spec)
        if spec.family == "taskpool":
            out += [
                replace(
                    spec,
                    name=twin_name(spec.name, r.commit),
                    label=f"{spec.label} at {r.rev} ({r.commit})",
                )
                for r in revisions
            ]
    return out


def taskpool_src(name: str, revisions: Sequence[Revision], working_src: Path) -> Path:
    """The directory contender `name` must import taskpool from.

    Raises:
        ValueError: `name` runs at a commit that is not among `revisions`.
    """
    commit = commit_of(name)
    if not commit:
        return working_src
    for revision in revisions:
        if revision.commit == commit:
            return revision.src
    raise ValueError(f"{name}: no exported revision {commit}")


def foreign_import(taskpool_file: str | None, src: Path) -> str | None:
    """Why a sample does not count (taskpool came from outside `src`), or None when it does.

    A sample that never imported taskpool passes: a contender that could not import it reports that itself.
    """
    if taskpool_file is None or Path(taskpool_file).resolve().is_relative_to(src.resolve()):
        return None
    return f"imported taskpool from {taskpool_file}, not from {src}"


def compare(
    entries: dict[str, dict[str, Any]], metrics: Sequence[Metric], commits: Sequence[str]
) -> None:
    """Add to each working-tree entry its ratio against its own twin at every commit, in place.

    Every metric that both have gets ``"vs": {commit: ratio}``, and the entry gets the primary metric's as
    its own ``"vs"``; above 1 means that the working tree did better.
    """
    ok = {(e["contender"], e["variant"]): e for e in entries.values() if e["status"] == "ok"}
    for (contender, variant), entry in ok.items():
        if commit_of(contender):
            continue
        for commit in commits:
            twin = ok.get((twin_name(contender, commit), variant))
            if twin is None:
                continue
            for metric in metrics:
                mine, theirs = entry["metrics"].get(metric.name), twin["metrics"].get(metric.name)
                if mine and theirs:
                    ratio = metric.ratio(mine["median"], theirs["median"])
                    mine.setdefault("vs", {})[commit] = ratio
            primary = entry["metrics"].get(metrics[0].name, {})
            entry.setdefault("vs", {})[commit] = primary.get("vs", {}).get(commit)


def _git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip()
        raise SystemExit(f"--at: git {' '.join(args)} failed: {why}")
    return proc.stdout


def _resolve(repo: Path, rev: str) -> tuple[str, str]:
    """The full and the abbreviated hash of the commit `rev` names."""
    full = (
        _git(repo, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
        .decode()
        .strip()
    )
    return full, _git(repo, "rev-parse", "--short", full).decode().strip()


def _export(repo: Path, rev: str, full: str, commit: str, into: Path) -> Revision:
    subject = _git(repo, "log", "-1", "--format=%s", full).decode(errors="replace").strip()
    dest = into / commit
    with tarfile.open(
        fileobj=io.BytesIO(_git(repo, "archive", "--format=tar", full, "src"))
    ) as tar:
        tar.extractall(dest, filter="data")
    src = dest / "src"
    if not (src / "taskpool" / "__init__.py").is_file():
        raise SystemExit(f"--at {rev}: {commit} has no src/taskpool/__init__.py")
    # Compile now: otherwise the first sample of each twin would pay for it, and the working tree's
    # bytecode is usually cached already.
    compileall.compile_dir(src, quiet=1)
    return Revision(rev, commit, subject, src)


@contextlib.contextmanager
def exported(repo: Path, revs: Sequence[str]) -> Iterator[list[Revision]]:
    """Export every revision's ``src/`` into a temporary directory that lives as long as the block.

    Revisions that name the same commit are exported once. Raises SystemExit when one is not a commit of
    `repo` or has no taskpool package.
    """
    if not revs:
        yield []
        return
    with tempfile.TemporaryDirectory(prefix="taskpool-bench-at-") as tmp:
        out: list[Revision] = []
        for rev in revs:
            full, commit = _resolve(repo, rev)
            if all(r.commit != commit for r in out):
                out.append(_export(repo, rev, full, commit, Path(tmp)))
        yield out


def working_tree(repo: Path) -> dict[str, Any]:
    """The commit the working tree is at and whether tracked files differ from it, for the results."""
    commit = _git(repo, "rev-parse", "--short", "HEAD").decode().strip()
    changed = _git(repo, "status", "--porcelain", "--untracked-files=no").strip()
    return {"commit": commit, "uncommitted_changes": bool(changed)}
