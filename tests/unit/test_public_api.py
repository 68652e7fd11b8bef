"""The public surface: every public name is exported once from `taskpool`, and importing has no side effects."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import taskpool

INIT = Path(taskpool.__file__)
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _type_checking_imports() -> dict[str, str]:
    """The names `taskpool/__init__.py` imports under TYPE_CHECKING, by the module they come from."""
    tree = ast.parse(INIT.read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    assert alias.asname == alias.name, "re-export with `import X as X`"
                    found[alias.name] = "." * stmt.level + (stmt.module or "")
    return found


def test_all_names_each_public_name_once_and_resolves() -> None:
    assert len(taskpool.__all__) == len(set(taskpool.__all__))
    for name in taskpool.__all__:
        assert hasattr(taskpool, name), name
    public = {
        n
        for n in dir(taskpool)
        if not n.startswith("_") and not isinstance(getattr(taskpool, n), types.ModuleType)
    }
    assert public - {"annotations", "TYPE_CHECKING", "Any"} == set(taskpool.__all__)


def test_public_names_do_not_advertise_private_modules_in_all() -> None:
    assert all(not name.startswith("_") for name in taskpool.__all__)


def test_every_error_class_derives_from_the_base() -> None:
    for name in taskpool.__all__:
        obj = getattr(taskpool, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseException)
            and obj is not taskpool.RemoteTraceback
        ):
            assert issubclass(obj, taskpool.TaskpoolError), name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'TaskPoool'"):
        _ = taskpool.TaskPoool


def _fresh_python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (so that imports made by other tests do not count)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_worker_imports_only_what_it_needs() -> None:
    code = (
        "import sys, taskpool._backends.process.worker; "
        "heavy = [m for m in ('tqdm', 'tenacity', 'taskpool._pool', 'multiprocessing.managers') if m in sys.modules]; "
        "print(heavy)"
    )
    assert _fresh_python(code) == "[]"


def test_the_cli_jobs_import_only_the_runtime() -> None:
    # Every job of `taskpool run` imports its wrapper in the worker: not the parser, the pool or the rest
    # of the command.
    code = (
        "import sys, taskpool._cli._worker; "
        "heavy = [m for m in sys.modules if m in ('argparse', 'dataclasses', 'tqdm', 'tenacity') "
        "or m.startswith(('taskpool._pool', 'taskpool._core', 'taskpool._backends')) "
        "or (m.startswith('taskpool._cli') and m not in ('taskpool._cli', 'taskpool._cli._worker'))]; "
        "print(sorted(heavy))"
    )
    assert _fresh_python(code) == "[]"


def test_importing_taskpool_starts_no_thread_and_no_process() -> None:
    code = (
        "import threading, multiprocessing, taskpool; "
        "assert threading.active_count() == 1, threading.enumerate(); "
        "assert not multiprocessing.active_children(); print('clean')"
    )
    assert _fresh_python(code) == "clean"


def test_all_lazy_exports_and_type_checking_imports_agree() -> None:
    exports: dict[str, str] = taskpool._EXPORTS
    assert set(exports) == set(taskpool.__all__)
    assert _type_checking_imports() == exports


def test_the_only_public_module_is_examples() -> None:
    modules = {m.name for m in pkgutil.iter_modules(taskpool.__path__)}
    assert {m for m in modules if not m.startswith("_")} == {"examples", "joblib"}


def test_every_public_name_is_in_the_api_reference() -> None:
    documented = {
        line.split("::: taskpool.", 1)[1].strip()
        for line in API_DOC.read_text().splitlines()
        if line.startswith("::: taskpool.")
    }
    assert set(taskpool.__all__) - documented == set()
