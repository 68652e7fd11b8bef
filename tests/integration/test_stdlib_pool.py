"""CPython's own `multiprocessing.Pool` test cases, run against `taskpool.Pool` under every start method.

The cases are imported from ``test._test_multiprocessing`` (the stdlib's test package), not copied. CPython
makes its concrete test classes by mixing each ``_Test*`` class with ``ProcessesMixin``, whose ``Pool``
attribute is ``multiprocessing.Pool``; the classes here mix in a mixin whose ``Pool`` makes a
`taskpool.Pool` with the class's start method. Two of the case classes call ``multiprocessing.Pool``
directly, so for them that name is patched to the same factory for the duration of each test.

The cases run in this (pytest's) process; the pools they make start worker processes as usual.
"""

from __future__ import annotations

import importlib
import multiprocessing
import sys
import unittest
import unittest.mock
from typing import TYPE_CHECKING, Any

import psutil
import pytest

import taskpool
from tests.conftest import SHUTDOWN_BOUND, START_METHODS, _our_children, _our_threads

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType


def _import_stdlib_cases() -> ModuleType:
    try:
        return importlib.import_module("test._test_multiprocessing")
    except (
        ImportError
    ) as exc:  # some interpreters (distro builds, embedded ones) ship without `test`
        pytest.skip(
            f"this interpreter ships without CPython's test package ({exc}); nothing to run",
            allow_module_level=True,
        )


stdlib: Any = _import_stdlib_cases()

# The stdlib cases ask for pools of 3 and 4 workers; this suite runs at most 2 worker processes per pool (the
# machine has 2 cores). No case's outcome depends on the worker count beyond 1 vs more.
MAX_WORKERS = 2

# Cases left out, each with why. Everything else in the three classes runs.
SKIPS: dict[str, str] = {
    # Private attributes of the stdlib's Pool, which has no counterpart in taskpool.Pool.
    "test_make_pool": "reads the stdlib Pool's private `_pool` list of processes (the ValueError checks it "
    "makes first are covered by test_compat.py::test_processes_below_one_is_a_value_error)",
    "test_resource_warning": "sets the stdlib Pool's private `_state` to force a ResourceWarning from __del__",
    "test_pool_worker_lifetime": "reads the private `_pool` and calls `_repopulate_pool()` (worker replacement "
    "under maxtasksperchild is covered by test_compat.py::test_maxtasksperchild_replaces_workers)",
    # Cases whose premise taskpool deliberately changes; each has a taskpool counterpart in test_compat.py.
    "test_unpickleable_result": "its 'unpicklable' result is a lambda, which taskpool returns by value through "
    "cloudpickle instead of failing (test_compat.py::test_unpicklable_result_is_maybe_encoding_error uses a "
    "result that no pickler takes)",
    "test_worker_finalization_via_atexit_handler_of_multiprocessing": "runs `from multiprocessing import Pool` "
    "in a fresh interpreter, which cannot be pointed at taskpool.Pool "
    "(test_compat.py::test_interpreter_exit_with_open_pool runs the same script with taskpool.Pool)",
}


class _TaskpoolMixin(stdlib.ProcessesMixin):  # type: ignore[misc]
    """``ProcessesMixin`` with ``Pool`` pointing at `taskpool.Pool` under ``start_method``."""

    start_method = "forkserver"

    @classmethod
    def Pool(cls, processes: int | None = None, *args: Any, **kwargs: Any) -> taskpool.Pool:
        if processes is not None and processes > MAX_WORKERS:
            processes = MAX_WORKERS
        kwargs.setdefault("context", multiprocessing.get_context(cls.start_method))
        return taskpool.Pool(processes, *args, **kwargs)

    def setUp(self) -> None:
        super().setUp()
        name = self._testMethodName
        if name in SKIPS:
            self.skipTest(SKIPS[name])
        # `_TestPoolWorkerErrors` and `_TestPoolWorkerLifetime` call `multiprocessing.Pool(...)` by name.
        patcher = unittest.mock.patch.object(multiprocessing, "Pool", type(self).Pool)
        patcher.start()
        self.addCleanup(patcher.stop)


def _make_case(base_name: str, start_method: str) -> type[unittest.TestCase]:
    base = getattr(stdlib, base_name)
    name = f"Test{base_name[len('_Test') :]}_{start_method.capitalize()}"
    case: type[unittest.TestCase] = type(
        name,
        (base, _TaskpoolMixin, unittest.TestCase),
        {"start_method": start_method, "__module__": __name__, "__qualname__": name},
    )
    return case


for _method in START_METHODS:
    for _base in ("_TestPool", "_TestPoolWorkerErrors", "_TestPoolWorkerLifetime"):
        _case = _make_case(_base, _method)
        globals()[_case.__name__] = _case
del _method, _base, _case


@pytest.fixture(autouse=True)
def no_leftovers() -> None:
    """Replaces the per-test leak check: ``_TestPool`` keeps one pool open for its whole class (setUpClass).

    `no_leftovers_after_class` makes the same check once each class has torn down.
    """
    return


@pytest.fixture(scope="class", autouse=True)
def no_leftovers_after_class() -> Iterator[None]:
    """Fail a class of cases that leaves a worker process or a taskpool thread running after it."""
    yield
    children = _our_children()
    psutil.wait_procs(children, timeout=SHUTDOWN_BOUND)
    for thread in _our_threads():
        thread.join(SHUTDOWN_BOUND)
    children, threads = [c for c in _our_children() if c.is_running()], _our_threads()
    for child in children:
        child.kill()
    assert not children, f"child processes left behind: {children}"
    assert not threads, f"threads left behind: {threads}"


def test_cases_were_installed() -> None:
    """Guard against a stdlib reshuffle that would silently leave this module with nothing to run."""
    module = sys.modules[__name__]
    installed = [
        n
        for n, v in vars(module).items()
        if isinstance(v, type) and issubclass(v, unittest.TestCase)
    ]
    assert len(installed) == 3 * len(START_METHODS)
    assert hasattr(stdlib._TestPool, "test_map_async_callbacks")
