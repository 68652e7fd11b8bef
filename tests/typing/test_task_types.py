"""Static types of `@task` and `TaskPool.submit`: `assert_type` checks (mypy --strict runs over tests) and a
check, through mypy's API, that wrong argument types are rejected.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typing_extensions import assert_type

from taskpool import JobFuture, Retry, Task, TaskPool, task

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]


@task
def typed(x: int, *, label: str = "") -> str:
    return f"{label}{x}"


@task(retry=Retry(attempts=2), name="typed-options")
def typed_options(x: int) -> float:
    return x / 2


@task
def positional(x: int, /) -> bytes:
    return bytes(x)


def plain(x: int) -> int:
    return x


def test_task_types_are_kept() -> None:
    assert_type(positional, Task[[int], bytes])
    assert_type(typed(1, label="a"), str)
    assert_type(typed_options(2), float)
    with TaskPool(1, backend="inline") as pool:
        assert_type(typed.submit(1, label="b"), JobFuture[str])
        assert_type(typed_options.submit(1), JobFuture[float])
        assert_type(positional.options(name="x"), Task[[int], bytes])
        assert_type(typed_options.map([1, 2]), list[float])
        assert_type(pool.submit(plain, 1), JobFuture[int])
        assert_type(pool.submit(typed, 1), JobFuture[str])
        assert typed.submit(1, label="b").result(10) == "b1"
        assert typed_options.map([1, 2]) == [0.5, 1.0]
    decorate: Callable[[Callable[[int], int]], Task[[int], int]] = task(name="n")
    assert decorate(plain)(3) == 3


BAD = """
from taskpool import TaskPool, task

@task
def f(x: int) -> int:
    return x

def g(x: int) -> int:
    return x

def g2(x: int, y: int) -> int:
    return x + y

f.submit("x")
f.submit(1, 2)
f("x")
pool = TaskPool(1)
pool.submit(g, "wrong")
pool.submit(g, 1, extra=2)
pool = TaskPool(max_workers=2)
pool.starmap(g2, [("a", "b")])
"""


@pytest.mark.timeout(120)
def test_mypy_rejects_wrong_argument_types(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(BAD))
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--python-version",
            "3.10",
            str(snippet),
        ]
    )
    assert status == 1, stdout + stderr
    errors = {int(line.split(":")[1]) for line in stdout.splitlines() if ": error:" in line}
    lines = textwrap.dedent(BAD).splitlines()
    expected = {
        i + 1
        for i, line in enumerate(lines)
        if line.startswith(("f.", "f(", "pool.submit", "pool = TaskPool(max", "pool.starmap"))
    }
    assert errors == expected, stdout
    assert 'Argument 1 to "submit" of "Task" has incompatible type "str"; expected "int"' in stdout


def test_starmap_is_typed_against_the_function() -> None:
    def add(a: int, b: int) -> int:
        return a + b

    with TaskPool(1, backend="inline") as pool:
        assert_type(pool.starmap(add, [(1, 2), (3, 4)]), list[int])
        assert pool.starmap(add, zip([1, 2], [3, 4], strict=True)) == [4, 6]
