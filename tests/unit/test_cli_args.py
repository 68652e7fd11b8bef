"""The ``taskpool`` command line: the validators of option values, and what the parser makes of them."""

from __future__ import annotations

import argparse
import math

import pytest

from taskpool._cli._args import _count, _integer, _positive_int, _seconds, build_parser


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("8", 8), (" 3 ", 3), ("1_000", 1000)])
def test_positive_int_accepts_whole_numbers_from_one(text: str, value: int) -> None:
    assert _positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "two", ""])
def test_positive_int_refuses_the_rest(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a whole number >= 1"):
        _positive_int(text)


def test_count_accepts_zero_and_refuses_negatives() -> None:
    assert _count("0") == 0
    assert _count("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a whole number >= 0, not '-1'"):
        _count("-1")


@pytest.mark.parametrize(("text", "value"), [("0.25", 0.25), ("2", 2.0), ("1e-3", 1e-3)])
def test_seconds_accepts_finite_positive_numbers(text: str, value: float) -> None:
    assert math.isclose(_seconds(text), value)


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "-inf"])
def test_seconds_refuses_zero_negative_and_non_finite(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"a finite number > 0"):
        _seconds(text)


def test_seconds_refuses_text() -> None:
    with pytest.raises(
        argparse.ArgumentTypeError, match=r"expected seconds \(a number > 0\), not 'soon'"
    ):
        _seconds("soon")


def test_integer_accepts_negatives_and_refuses_text() -> None:
    assert _integer("-5") == -5
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a whole number, not '1.5'"):
        _integer("1.5")


def test_run_defaults() -> None:
    args = build_parser().parse_args(["run", "m:f"])
    assert (args.command, args.function, args.input, args.range) == ("run", "m:f", None, None)
    assert (args.workers, args.backend, args.start_method) == (None, "process", None)
    assert (args.timeout, args.retries, args.chunksize) == (None, 0, 1)
    assert (args.unordered, args.progress, args.resume, args.output) == (False, None, False, None)


def test_run_options_are_validated(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        [
            "run",
            "m:f",
            "--range",
            "-2",
            "5",
            "--chunksize",
            "100",
            "--timeout",
            "1.5",
            "--no-progress",
        ]
    )
    assert (args.range, args.chunksize, args.timeout, args.progress) == ([-2, 5], 100, 1.5, False)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "m:f", "--chunksize", "0"])
    assert exit_.value.code == 2
    assert "--chunksize: expected a whole number >= 1, not '0'" in capsys.readouterr().err


def test_demo_defaults() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.command, args.workers, args.jobs, args.seconds) == (
        "demo",
        None,
        8,
        0.25,
    )  # workers: the CPU count, as for run


def test_demo_and_run_default_workers_alike() -> None:
    parser = build_parser()
    demo = parser.parse_args(["demo"])
    run = parser.parse_args(["run", "m:f"])
    assert demo.workers is None
    assert run.workers is None  # both: the CPU count
