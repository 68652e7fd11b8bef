"""What ``taskpool run`` promises its users about their data, its channels and its messages.

Never destroying data (an existing OUTPUT, the input, a locked OUTPUT), stdout carrying records only, the
summary line, records that say which input they are, a full disk, a progress bar that never tears in a real
terminal, bounded memory for long lines, and inputs that fail alone. Runs ``python -m taskpool`` in
subprocesses (and in a pseudo-terminal), each with a timeout.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from taskpool import _cli as cli

from ._terminal import run_in_pty, screen_lines, torn_lines
from .test_cli import JOBS, ROOT, TIMEOUT, _env, records, run_captured, taskpool

SUMMARY = re.compile(r"^taskpool run: (\d+) ok, (\d+) failed in \d+\.\d s -> (.+)$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary_of(stderr: str) -> re.Match[str]:
    lines = [line for line in stderr.splitlines() if not line.startswith("  ")]
    match = SUMMARY.match(lines[-1])
    assert match, stderr
    return match


# -- never destroy data ----------------------------------------------------------------------------------


def test_an_existing_output_is_never_overwritten_without_resume_or_overwrite(
    tmp_path: Path,
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("1\n2\n", encoding="utf-8")
    out.write_text("precious results\n", encoding="utf-8")
    before = sha256(source), sha256(out)
    refused = taskpool("run", f"{JOBS}:square", str(source), "-o", str(out))
    assert refused.returncode == 2
    assert "--resume" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert (sha256(source), sha256(out)) == before
    replaced = taskpool("run", f"{JOBS}:square", str(source), "-o", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert [r["result"] for r in records(out.read_text(encoding="utf-8"))] == [1, 4]


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_an_output_that_is_the_input_is_refused_however_it_is_named(
    tmp_path: Path, spelling: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("1\n2\n", encoding="utf-8")
    out = {
        "same": str(source),
        "relative": os.path.relpath(source, ROOT),  # the command runs in ROOT
        "symlink": str(tmp_path / "link.jsonl"),
        "hardlink": str(tmp_path / "hard.jsonl"),
    }[spelling]
    if spelling == "symlink":
        os.symlink(source, out)
    elif spelling == "hardlink":
        os.link(source, out)
    before = sha256(source)
    # Not even --overwrite may replace the input.
    result = taskpool("run", f"{JOBS}:square", str(source), "-o", out, "--overwrite")
    assert result.returncode == 2
    assert "is the input file" in result.stderr
    assert sha256(source) == before


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"index": 0, "value": 0, "ok": true, "result": 0}\n', encoding="utf-8")
    before = sha256(out)
    with out.open("ab") as held:  # what a first run holds while it writes
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = taskpool("run", f"{JOBS}:square", "--range", "0", "5", "-o", str(out), "--resume")
        assert second.returncode == 2
        assert "locked by another process" in second.stderr
        assert sha256(out) == before
    # Once the first run is done, the same command goes ahead.
    third = taskpool("run", f"{JOBS}:square", "--range", "0", "5", "-o", str(out), "--resume")
    assert third.returncode == 0, third.stderr
    assert [r["index"] for r in records(out.read_text(encoding="utf-8"))] == list(range(5))


# -- channels and the summary ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["process", "thread"])
def test_what_jobs_print_goes_to_stderr_so_stdout_carries_records_only(backend: str) -> None:
    result = taskpool("run", f"{JOBS}:chatty", "--range", "0", "6", "--backend", backend)
    assert result.returncode == 0, result.stderr
    assert [r["result"] for r in records(result.stdout)] == list(range(6))  # `| jq` would work
    assert sorted(line for line in result.stderr.splitlines() if line.startswith("job-print-")) == [
        f"job-print-{i}" for i in range(6)
    ]


def test_what_jobs_write_below_print_goes_to_stderr_too() -> None:
    # Descriptor 1 of a worker, and of the processes its jobs start, is a pipe to the command, which writes
    # what comes through it to stderr.
    result = taskpool("run", f"{JOBS}:chatty_below_print", "--range", "0", "4")
    assert result.returncode == 0, result.stderr
    assert [r["result"] for r in records(result.stdout)] == list(range(4))
    for kind in ("fd", "child"):
        assert sorted(line for line in result.stderr.splitlines() if f"-{kind}-" in line) == [
            f"job-{kind}-{i}" for i in range(4)
        ]


def test_a_run_always_ends_with_one_summary_line_on_stderr(tmp_path: Path) -> None:
    to_stdout = taskpool("run", f"{JOBS}:square", "--range", "0", "5")
    assert to_stdout.returncode == 0
    assert summary_of(to_stdout.stderr).groups() == ("5", "0", "stdout")
    out = tmp_path / "out.jsonl"
    failing = taskpool("run", f"{JOBS}:fail_on_three", "--range", "0", "5", "-o", str(out))
    assert failing.returncode == 1
    assert failing.stderr.splitlines()[0].startswith("taskpool run: 4 ok, 1 failed in ")
    assert failing.stderr.splitlines()[0].endswith(f"-> {out}")
    assert "  index 3: ValueError: three is not allowed: 3" in failing.stderr


def test_records_name_their_input_line_or_range_value(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("1\n\n2\n\n\n3\n", encoding="utf-8")  # blank lines count as lines
    by_line = records(taskpool("run", f"{JOBS}:square", str(source)).stdout)
    assert [(r["index"], r["line"], r["result"]) for r in by_line] == [
        (0, 1, 1),
        (1, 3, 4),
        (2, 6, 9),
    ]
    by_value = records(taskpool("run", f"{JOBS}:square", "--range", "7", "10").stdout)
    assert [(r["index"], r["value"], r["result"]) for r in by_value] == [
        (0, 7, 49),
        (1, 8, 64),
        (2, 9, 81),
    ]


def test_an_output_that_is_not_a_regular_file_is_not_locked() -> None:
    """Two runs may write to /dev/null at once: a device is not a file one run could overwrite."""
    with open(os.devnull, "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = taskpool("run", f"{JOBS}:square", "--range", "0", "5", "-o", os.devnull)
    assert result.returncode == 0, result.stderr


# -- a full disk -----------------------------------------------------------------------------------------


def test_a_full_disk_stops_with_one_message_and_exit_2() -> None:
    result = taskpool("run", f"{JOBS}:square", "--range", "0", "50", "-o", "/dev/full")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "No space left on device" in result.stderr
    assert "--resume" in result.stderr


def test_the_output_written_before_the_disk_filled_up_stays_resumable(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    limit = 3000  # bytes the file may grow to: a write past it fails (EFBIG), as on a full disk

    def small_disk() -> None:  # pragma: no cover - runs in the child before exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    # Threads: worker processes could not start under the limit.
    args = ["run", f"{JOBS}:square", "--range", "0", "300", "--backend", "thread", "-o", str(out)]
    full = run_captured([sys.executable, "-m", "taskpool", *args], preexec_fn=small_disk)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    assert out.stat().st_size == limit  # it wrote until the disk was full
    resumed = taskpool(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = records(out.read_text(encoding="utf-8"))
    assert sorted(r["index"] for r in got) == list(range(300))


# -- a real terminal --------------------------------------------------------------------------------------


def test_the_progress_bar_never_shares_a_line_with_records_or_job_output() -> None:
    argv = [sys.executable, "-m", "taskpool", "run", f"{JOBS}:chatty", "--range", "0", "40"]
    text, status = run_in_pty([*argv, "--workers", "2"], _env(), str(ROOT), TIMEOUT)
    assert status == 0, text
    screen = screen_lines(text)
    assert sum(line.startswith('{"index"') for line in screen) == 40, text
    assert sum(line.startswith("job-print-") for line in screen) == 40, text
    assert any("40/40" in line for line in screen), text  # the bar was drawn
    assert torn_lines(text, "item/s]", ('"index"', "job-print-")) == []


def test_reading_stdin_from_a_terminal_says_how_to_end_the_input() -> None:
    argv = [sys.executable, "-m", "taskpool", "run", f"{JOBS}:square", "--no-progress"]
    text, status = run_in_pty(argv, _env(), str(ROOT), TIMEOUT, typed=b"3\n\x04")
    assert status == 0, text
    assert "reading JSON lines from stdin until end of file (Ctrl-D)" in text
    assert '{"index": 0, "line": 1, "ok": true, "result": 9}' in screen_lines(text)


# -- messages ---------------------------------------------------------------------------------------------


def test_crash_and_timeout_messages_name_the_command_flags_and_the_attempts() -> None:
    crash = taskpool("run", f"{JOBS}:die_on_five", "--range", "4", "6", "--retries", "1")
    message = records(crash.stdout)[1]["error"]["message"]
    assert "2 attempts made" in message
    assert "--retries" in message
    assert "Retry(" not in message
    timeout = taskpool("run", f"{JOBS}:slow_identity", "--timeout", "0.5", stdin="[1, 30.0]\n")
    message = records(timeout.stdout)[0]["error"]["message"]
    assert "1 attempt made" in message
    assert "--timeout" in message
    assert "options(timeout" not in message


@pytest.mark.parametrize(("start", "stop"), [("5", "1"), ("3", "3")])
def test_an_empty_or_reversed_range_is_a_usage_error(
    start: str, stop: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", f"{JOBS}:square", "--range", start, stop]) == 2
    assert f"--range {start} {stop} is empty" in capsys.readouterr().err


def test_a_target_that_is_not_callable_is_named_with_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["run", f"{JOBS}:NOT_CALLABLE", "--range", "0", "1"]) == 2
    assert f"{JOBS}:NOT_CALLABLE is an int, not a function" in capsys.readouterr().err


def test_a_misspelled_function_name_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", f"{JOBS}:sqare", "--range", "0", "1"]) == 2
    assert "did you mean 'square'?" in capsys.readouterr().err


def test_a_closed_stdin_is_a_usage_error() -> None:
    command = f"exec {sys.executable} -m taskpool run {JOBS}:square <&-"
    result = run_captured(["/bin/sh", "-c", command])
    assert result.returncode == 2, result.stderr
    assert "stdin is closed" in result.stderr
    assert "Traceback" not in result.stderr


# -- inputs that fail alone -----------------------------------------------------------------------------


def test_one_deeply_nested_line_fails_alone_and_resume_gets_past_it(tmp_path: Path) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    source.write_text("\n".join(["1"] * 5 + [deep] + ["2"] * 5) + "\n", encoding="utf-8")
    first = taskpool("run", f"{JOBS}:square", str(source), "-o", str(out))
    assert first.returncode == 1, first.stderr
    got = records(out.read_text(encoding="utf-8"))
    assert [r["ok"] for r in got] == [True] * 5 + [False] + [True] * 5
    assert got[5]["line"] == 6
    assert got[5]["error"]["type"] == "InputError"
    assert "line 6" in got[5]["error"]["message"]
    # Keep the records up to the bad line, as if the run had stopped there: --resume goes on past it.
    out.write_text("".join(f"{json.dumps(r)}\n" for r in got[:6]), encoding="utf-8")
    resumed = taskpool("run", f"{JOBS}:square", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 1  # the bad line's record counts
    assert sorted(r["index"] for r in records(out.read_text(encoding="utf-8"))) == list(range(11))


def test_nan_in_the_input_is_an_error_record_for_its_line() -> None:
    result = taskpool("run", f"{JOBS}:add", stdin="1\nNaN\n[1, Infinity]\n2\n")
    got = records(result.stdout)
    assert [r["ok"] for r in got] == [True, False, False, True]
    for record, line in ((got[1], 2), (got[2], 3)):
        assert record["error"]["type"] == "InputError"
        assert record["error"]["message"].startswith(f"line {line} of the input is not JSON")


def test_resume_with_progress_never_shows_a_negative_total(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert taskpool("run", f"{JOBS}:square", "--range", "0", "10", "-o", str(out)).returncode == 0
    result = taskpool(
        "run", f"{JOBS}:square", "--range", "0", "3", "-o", str(out), "--resume", "--progress"
    )
    assert result.returncode == 0, result.stderr
    # The range's 3 inputs are all recorded: nothing is left to do, not -7 of it.
    assert "-7" not in result.stderr
    assert "/-" not in result.stderr


# -- memory ------------------------------------------------------------------------------------------------


def _peak_rss(argv: list[str]) -> int:
    """The peak RSS of ``taskpool ARGV`` (the command's own process), sampled every 20 ms."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskpool", *argv],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = 0
    deadline = time.monotonic() + TIMEOUT
    try:
        command = psutil.Process(proc.pid)
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, command.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
    finally:
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    return peak


def test_memory_is_bounded_by_the_bytes_read_ahead_not_only_by_lines(tmp_path: Path) -> None:
    # 40 lines of 4 MiB, 1 worker, a slow function: by chunks alone (64 per worker) all 40 would be read
    # ahead (160 MiB); --read-ahead 4 lets about 4 MiB of input (one line, plus the one always let
    # through) wait. The peak is compared with that of a run of a single line, which holds the
    # interpreter, the pool and one line.
    line = (json.dumps("x" * (4 * 2**20 - 3)) + "\n").encode()
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    one.write_bytes(line)
    many.write_bytes(line * 40)
    common = [f"{JOBS}:length_after", "--workers", "1", "--read-ahead", "4", "--overwrite"]
    base = _peak_rss(
        ["run", f"{JOBS}:length_after", str(one), *common[1:], "-o", str(tmp_path / "out1.jsonl")]
    )
    peak = _peak_rss(
        ["run", f"{JOBS}:length_after", str(many), *common[1:], "-o", str(tmp_path / "out.jsonl")]
    )
    # Measured: about 12 MiB more than the single line (and about 170 MiB more without the bound).
    assert peak - base < 3 * 12 * 2**20, f"{(peak - base) / 2**20:.0f} MiB above a single line"
