"""The ``taskpool`` command, run as ``python -m taskpool`` in a subprocess (and a few parts in-process).

The subprocess runs from the project root with it on PYTHONPATH, so that ``tests.integration._cli_jobs:fn``
resolves there and in its workers. Every subprocess call has a timeout; the tests that kill or interrupt a run
wait for its output file to grow by polling it with a deadline (it is another process: there is no event to
wait on), and check afterwards that none of its workers outlived it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from taskpool import _cli as cli

ROOT = Path(__file__).resolve().parents[2]
JOBS = "tests.integration._cli_jobs"
TIMEOUT = 60.0  # for any one command; they take a second or two unless something hangs


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def taskpool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m taskpool ARGS`` to completion and capture its output."""
    return run_captured([sys.executable, "-m", "taskpool", *args], stdin)


def run_captured(
    argv: list[str], stdin: str | None = None, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` from the project root to completion and capture its output."""
    return subprocess.run(
        argv,
        **popen,
        cwd=ROOT,
        env=_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def start(*args: str, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "taskpool", *args],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group, as a terminal's foreground job has
        )


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def wait_for_lines(
    path: Path, count: int, proc: subprocess.Popen[bytes], within: float = 30.0
) -> int:
    """Poll ``path`` until it holds ``count`` complete lines (bounded); returns how many it held."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines = path.read_bytes().count(b"\n") if path.exists() else 0
        if lines >= count:
            return lines
        assert proc.poll() is None, (
            f"the run ended (exit {proc.returncode}) before writing {count} lines"
        )
        time.sleep(0.02)
    pytest.fail(f"{path} did not reach {count} lines within {within} s")


def descendants(pid: int) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    return children


def assert_all_exit(procs: list[psutil.Process]) -> None:
    """The given processes (a killed run's workers) exit on their own: none is left orphaned."""
    _gone, alive = psutil.wait_procs(procs, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, f"processes outlived the run: {alive}"


# -- help, usage errors (in-process: they stop before any pool starts) --------------------------------------


def test_help_lists_commands_and_run_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as top:
        cli.main(["--help"])
    assert top.value.code == 0
    text = capsys.readouterr().out
    assert "demo" in text
    assert "run" in text
    with pytest.raises(SystemExit) as run:
        cli.main(["run", "--help"])
    assert run.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--range",
        "--unordered",
        "--resume",
        "--retries",
        "--timeout",
        "--chunksize",
        "--progress",
    ):
        assert option in text
    assert "on_crash" in text
    assert "on_timeout" in text


def test_python_dash_m_taskpool_runs_the_command() -> None:
    result = taskpool("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("taskpool ")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"{JOBS}:no_such_function", "has no attribute 'no_such_function'"),
        ("no_such_module_here:fn", "no module named 'no_such_module_here'"),
        ("missing_colon", "expected MODULE:FUNCTION"),
        (f"{JOBS}:_GATE", "not a function"),
        ("no/such/file.py:fn", "no such file"),
    ],
)
def test_bad_function_is_a_usage_error(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", spec, "--range", "0", "3"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_bad_function_exits_2_from_the_command_too() -> None:
    result = taskpool("run", f"{JOBS}:no_such_function", "--range", "0", "3")
    assert result.returncode == 2
    assert "has no attribute" in result.stderr


def test_unreadable_input_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", f"{JOBS}:square", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read the input" in capsys.readouterr().err


def test_resume_needs_an_output_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", f"{JOBS}:square", "--range", "0", "3", "--resume"]) == 2
    assert "--resume needs -o OUTPUT" in capsys.readouterr().err


def test_input_and_range_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", f"{JOBS}:square", "in.jsonl", "--range", "0", "3"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_timeout_the_backend_cannot_enforce_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        cli.main(
            ["run", f"{JOBS}:square", "--range", "0", "3", "--backend", "thread", "--timeout", "1"]
        )
        == 2
    )
    assert "timeout" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option", [["--workers", "0"], ["--chunksize", "x"], ["--timeout", "-1"], ["--retries", "-1"]]
)
def test_bad_option_value_is_a_usage_error(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", f"{JOBS}:square", "--range", "0", "3", *option])
    assert exit_.value.code == 2
    assert option[0] in capsys.readouterr().err


# -- results -----------------------------------------------------------------------------------------------


def test_ordered_output_under_each_start_method(start_method: str) -> None:
    result = taskpool(
        "run",
        f"{JOBS}:square",
        "--range",
        "0",
        "30",
        "--workers",
        "2",
        "--start-method",
        start_method,
    )
    assert result.returncode == 0, result.stderr
    assert records(result.stdout) == [
        {"index": i, "value": i, "ok": True, "result": i * i} for i in range(30)
    ]


def test_ordered_output_waits_for_a_slow_first_input() -> None:
    # Input 0 finishes after every other one, yet the lines come in input order.
    lines = "".join(f"[{i}, 9]\n" for i in range(10))
    result = taskpool(
        "run", f"{JOBS}:last_finishes_first", "--backend", "thread", "--workers", "2", stdin=lines
    )
    assert result.returncode == 0, result.stderr
    assert [r["index"] for r in records(result.stdout)] == list(range(10))


def test_unordered_output_comes_as_jobs_finish() -> None:
    lines = "".join(f"[{i}, 9]\n" for i in range(10))
    result = taskpool(
        "run",
        f"{JOBS}:last_finishes_first",
        "-",
        "--backend",
        "thread",
        "--workers",
        "2",
        "--unordered",
        stdin=lines,
    )
    assert result.returncode == 0, result.stderr
    got = records(result.stdout)
    order = [r["index"] for r in got]
    # Input 0 waited until input 9 ran, and the other worker ran 1..8 before 9: their lines came first.
    assert order.index(0) > max(order.index(i) for i in range(1, 9))
    assert sorted(r["index"] for r in got) == list(range(10))
    assert all(r["result"] == r["index"] for r in got)


def test_input_forms_and_a_malformed_line(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('1\n[2, 3]\n{"x": 4, "y": 5}\n\nnot json\n[6]\n', encoding="utf-8")
    result = taskpool("run", f"{JOBS}:add", str(source))
    assert result.returncode == 1
    got = records(result.stdout)
    assert got[:3] == [
        {"index": 0, "line": 1, "ok": True, "result": 1},
        {"index": 1, "line": 2, "ok": True, "result": 5},
        {"index": 2, "line": 3, "ok": True, "result": 9},
    ]
    assert got[3]["index"] == 3
    assert got[3]["ok"] is False
    assert got[3]["error"]["type"] == "InputError"
    assert (
        "line 5" in got[3]["error"]["message"]
    )  # the blank line 4 is no input, but counts as a line
    assert got[4] == {"index": 4, "line": 6, "ok": True, "result": 6}
    assert "1 failed" in result.stderr


def test_a_failing_job_becomes_an_error_record() -> None:
    result = taskpool("run", f"{JOBS}:fail_on_three", "--range", "0", "6")
    assert result.returncode == 1
    got = records(result.stdout)
    assert [r["ok"] for r in got] == [True, True, True, False, True, True]
    error = got[3]["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "three is not allowed: 3"
    assert "in fail_on_three" in error["traceback"]
    assert "_worker.py" not in error["traceback"]  # taskpool's own frames are left out
    assert "index 3: ValueError: three is not allowed: 3" in result.stderr


def test_a_result_json_cannot_encode_becomes_an_error_record() -> None:
    result = taskpool("run", f"{JOBS}:not_json", "--range", "0", "4")
    assert result.returncode == 1
    got = records(result.stdout)
    assert [r["ok"] for r in got] == [True, False, True, False]
    assert got[1]["error"]["type"] == "ResultNotJSONError"
    assert "not JSON-serializable" in got[1]["error"]["message"]


def test_a_crash_fails_its_chunk_only() -> None:
    result = taskpool("run", f"{JOBS}:die_on_five", "--range", "0", "8", "--chunksize", "4")
    assert result.returncode == 1
    got = records(result.stdout)
    assert [r["index"] for r in got] == list(range(8))
    assert all(r["ok"] for r in got[:4])
    assert {r["error"]["type"] for r in got[4:]} == {"WorkerCrashedError"}
    assert "die_on_five[4..7]" in got[4]["error"]["message"]  # the job is named after its inputs


def test_retries_rerun_a_failing_input(tmp_path: Path) -> None:
    marker = tmp_path / "seen"
    line = json.dumps([str(marker)]) + "\n"
    without = taskpool("run", f"{JOBS}:flaky_once", stdin=line)
    assert without.returncode == 1
    assert records(without.stdout)[0]["error"]["type"] == "ConnectionError"
    marker.unlink()
    with_retry = taskpool("run", f"{JOBS}:flaky_once", "--retries", "1", stdin=line)
    assert with_retry.returncode == 0, with_retry.stderr
    assert records(with_retry.stdout) == [{"index": 0, "line": 1, "ok": True, "result": "ok"}]


def test_a_timeout_fails_that_input_only() -> None:
    lines = "[0, 0.0]\n[1, 30.0]\n[2, 0.0]\n"
    result = taskpool("run", f"{JOBS}:slow_identity", "--timeout", "2", stdin=lines)
    assert result.returncode == 1
    got = records(result.stdout)
    assert [r["ok"] for r in got] == [True, False, True]
    assert got[1]["error"]["type"] == "JobTimeoutError"
    assert "slow_identity[1]" in got[1]["error"]["message"]  # the job is named after the input


def test_output_file_and_example_function(tmp_path: Path) -> None:
    out = tmp_path / "steps.jsonl"
    result = taskpool(
        "run", "taskpool.examples:collatz_steps", "--range", "1", "28", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    got = records(out.read_text(encoding="utf-8"))
    assert len(got) == 27
    assert got[26] == {"index": 26, "value": 27, "ok": True, "result": 111}


# -- resume, kill, interrupt -------------------------------------------------------------------------------


def _indices(path: Path) -> list[int]:
    return [r["index"] for r in records(path.read_text(encoding="utf-8"))]


def test_resume_after_sigkill_and_a_torn_line(tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    n = 120
    args = (
        "run",
        f"{JOBS}:slow_identity",
        "--range",
        "0",
        str(n),
        "--workers",
        "2",
        "-o",
        str(out),
    )
    proc = start(*args, stderr=err)
    try:
        wait_for_lines(out, 10, proc)
        workers = descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    assert_all_exit(workers)
    before = _indices(out) if out.read_bytes().endswith(b"\n") else None
    assert before is None or len(before) < n, "the run finished before it was killed"
    with out.open("ab") as f:  # as if the kill had landed in the middle of a write
        f.write(b'{"index": 99999, "ok": tr')

    result = taskpool(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert "torn" in result.stderr
    assert sorted(_indices(out)) == list(range(n))  # each exactly once: nothing lost, nothing twice


def test_resume_skips_what_is_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    base = ["run", f"{JOBS}:fail_on_three", "--backend", "inline", "-o", str(out)]
    assert cli.main([*base, "--range", "0", "4"]) == 1
    capsys.readouterr()
    assert (
        cli.main([*base, "--range", "0", "8", "--resume"]) == 1
    )  # the failure kept from before counts
    err = capsys.readouterr().err
    assert "4 ok, 0 failed in " in err
    assert "(and 4 kept from the earlier run, 1 of them failed)" in err
    assert _indices(out) == list(range(8))
    assert (
        cli.main([*base, "--range", "0", "8", "--resume", "--unordered"]) == 1
    )  # nothing left to do
    assert _indices(out) == list(range(8))


def test_resume_refuses_a_damaged_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    text = '{"index": 0, "ok": true, "result": 0}\ngarbage\n{"index": 1, "ok": true, "result": 1}\n'
    out.write_text(text, encoding="utf-8")
    assert cli.main(["run", f"{JOBS}:square", "--range", "0", "3", "-o", str(out), "--resume"]) == 2
    assert "line 2" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == text  # left as it was


def test_chunks_isolate_an_input_that_raises(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        f"{JOBS}:fail_on_three",
        "--range",
        "0",
        "8",
        "--chunksize",
        "3",
        "--backend",
        "thread",
    ]
    assert cli.main(args) == 1
    got = records(capsys.readouterr().out)
    assert [r["ok"] for r in got] == [True, True, True, False, True, True, True, True]
    assert got[3]["error"]["traceback"].startswith("Traceback (most recent call last):\n  File")
    assert "call_chunk" not in got[3]["error"]["traceback"]
    assert "_runtime" not in got[3]["error"]["traceback"]  # nor the runtime's frame that called it


def test_ctrl_c_keeps_finished_lines_and_exits_130(tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    n = 150
    args = (
        "run",
        f"{JOBS}:slow_identity",
        "--range",
        "0",
        str(n),
        "--workers",
        "2",
        "-o",
        str(out),
    )
    proc = start(*args, stderr=err)
    try:
        seen = wait_for_lines(out, 10, proc)
        workers = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to the command and its workers alike
        assert proc.wait(timeout=TIMEOUT) == 130, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    assert_all_exit(workers)
    kept = _indices(out)  # every line whole: it parses
    assert len(kept) >= seen
    assert len(kept) < n
    assert kept == list(range(len(kept)))  # in order, with no gap
    assert "--resume" in err.read_text()

    result = taskpool(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert _indices(out) == list(range(n))


# -- demo --------------------------------------------------------------------------------------------------


def test_demo_prints_timings_speedup_and_a_parent_side_callback() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskpool", "demo", "--jobs", "4", "--seconds", "0.1"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, stderr
    assert re.search(r"serial, in this process: +\d+\.\d+ s", stdout)
    speedup = re.search(r"speedup: (\d+\.\d+)x", stdout)
    assert speedup is not None, stdout
    assert (
        float(speedup.group(1)) > 0
    )  # its size depends on the machine's load; docs/cli.md has numbers
    callback = re.search(
        r"callback ran in pid (\d+) on thread '([^']+)'.* worker pid (\d+)", stdout
    )
    assert callback is not None, stdout
    assert int(callback.group(1)) == proc.pid  # in the parent...
    assert callback.group(2) != "MainThread"  # ...on the pool's event thread
    assert int(callback.group(3)) != proc.pid  # the job itself ran in a worker


# -- in-process (inline backend; no subprocess) ----------------------------------------------------------


def test_main_in_process_with_the_inline_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    status = cli.main(
        [
            "run",
            "taskpool.examples:collatz_steps",
            "--range",
            "0",
            "5",
            "--backend",
            "inline",
            "--chunksize",
            "2",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert status == 1
    got = records(out.read_text(encoding="utf-8"))
    assert [r["ok"] for r in got] == [
        False,
        True,
        True,
        True,
        True,
    ]  # collatz_steps(0) raises ValueError
    assert got[0]["error"]["type"] == "ValueError"
    assert (
        "in collatz_steps" in got[0]["error"]["traceback"]
    )  # frames of taskpool.examples are kept
    assert "index 0: ValueError" in capsys.readouterr().err


def test_a_file_path_names_the_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "cli_script_job.py"
    script.write_text("def triple(x):\n    return 3 * x\n", encoding="utf-8")
    status = cli.main(["run", f"{script}:triple", "--range", "0", "3", "--backend", "inline"])
    assert status == 0
    assert records(capsys.readouterr().out) == [
        {"index": i, "value": i, "ok": True, "result": 3 * i} for i in range(3)
    ]


def test_a_resumed_runs_bar_counts_the_whole_input_with_the_earlier_work_counted_in(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    first = taskpool("run", f"{JOBS}:square", "--range", "0", "188", "-o", str(out))
    assert first.returncode == 0, first.stderr
    again = taskpool(
        "run", f"{JOBS}:square", "--range", "0", "400", "-o", str(out), "--resume", "--progress"
    )
    assert again.returncode == 0, again.stderr
    assert "400/400" in again.stderr
    assert "212/212" not in again.stderr
    assert len(records(out.read_text())) == 400
