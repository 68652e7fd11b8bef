"""The public surface: every public name is exported once from `taskpool`, and importing has no side effects."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import taskpool


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
