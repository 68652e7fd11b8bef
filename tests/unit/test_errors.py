"""Every error class pickles round trip with its attributes and message intact (no processes)."""

from __future__ import annotations

import pickle
import signal
from typing import Any

import pytest

import taskpool
from taskpool import (
    CheckpointError,
    DaskConnectionError,
    ForkedPoolError,
    InitializerError,
    JobTimeoutError,
    PoolClosedError,
    RemoteTraceback,
    SerializationError,
    SharedStateGoneError,
    TaskpoolError,
    WorkerCrashedError,
    WorkerStartError,
)

ERRORS: list[Any] = [
    pytest.param(
        CheckpointError("run.ckpt", "not a checkpoint"),
        {"path": "run.ckpt", "reason": "not a checkpoint"},
        id="CheckpointError",
    ),
    pytest.param(TaskpoolError("plain"), {}, id="TaskpoolError"),
    pytest.param(PoolClosedError("terminated"), {"state": "terminated"}, id="PoolClosedError"),
    pytest.param(
        ForkedPoolError(4321, "shared state"),
        {"owner": 4321, "what": "shared state"},
        id="ForkedPoolError",
    ),
    pytest.param(
        WorkerCrashedError(1234, -signal.SIGSEGV, "parse", "while loading"),
        {
            "pid": 1234,
            "exitcode": -signal.SIGSEGV,
            "signal": signal.SIGSEGV,
            "job": "parse",
            "detail": "while loading",
        },
        id="WorkerCrashedError-signal",
    ),
    pytest.param(
        WorkerCrashedError(99, 3),
        {"pid": 99, "exitcode": 3, "signal": None, "job": None, "detail": ""},
        id="WorkerCrashedError-exit",
    ),
    pytest.param(
        WorkerCrashedError(None, None, "stuck"),
        {"pid": None, "exitcode": None, "signal": None, "job": "stuck"},
        id="WorkerCrashedError-unknown",
    ),
    pytest.param(
        JobTimeoutError(2.5, "fetch"), {"timeout": 2.5, "job": "fetch"}, id="JobTimeoutError"
    ),
    pytest.param(
        JobTimeoutError(2.5, "fetch", "Current thread 0x1:\n  File ...\n", "wait (f.py:3)"),
        {"timeout": 2.5, "stack": "Current thread 0x1:\n  File ...\n", "where": "wait (f.py:3)"},
        id="JobTimeoutError-stack",
    ),
    pytest.param(
        WorkerCrashedError(77, -signal.SIGKILL, "load", oom_killed=True),
        {"pid": 77, "signal": signal.SIGKILL, "oom_killed": True},
        id="WorkerCrashedError-oom",
    ),
    pytest.param(
        SerializationError("result", "unpickle", "parent", "load", "RuntimeError: no"),
        {
            "part": "result",
            "stage": "unpickle",
            "where": "parent",
            "job": "load",
            "reason": "RuntimeError: no",
        },
        id="SerializationError",
    ),
    pytest.param(
        InitializerError("RuntimeError: no db"),
        {"reason": "RuntimeError: no db", "initializer": None},
        id="InitializerError",
    ),
    pytest.param(
        InitializerError("RuntimeError: no db", "connect"),
        {"reason": "RuntimeError: no db", "initializer": "connect"},
        id="InitializerError-named",
    ),
    pytest.param(
        WorkerStartError("OSError: [Errno 24] Too many open files"),
        {"reason": "OSError: [Errno 24] Too many open files", "initializer": None},
        id="WorkerStartError",
    ),
    pytest.param(
        DaskConnectionError("tcp://h:8786", "did not answer within 10 s", "f"),
        {"address": "tcp://h:8786", "reason": "did not answer within 10 s", "job": "f"},
        id="DaskConnectionError",
    ),
    pytest.param(
        SharedStateGoneError("/tmp/x/manager.sock", "EOFError: "),
        {"address": "/tmp/x/manager.sock", "reason": "EOFError: "},
        id="SharedStateGoneError",
    ),
    pytest.param(
        RemoteTraceback("Traceback ...\nValueError: x"),
        {"tb": "Traceback ...\nValueError: x"},
        id="RemoteTraceback",
    ),
]


@pytest.mark.parametrize(("error", "attributes"), ERRORS)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_errors_pickle_round_trip(
    error: BaseException, attributes: dict[str, Any], protocol: int
) -> None:
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    for name, value in attributes.items():
        assert getattr(copy, name) == value, name


def test_every_public_error_is_covered() -> None:
    covered = {p.id.split("-")[0] for p in ERRORS}
    public = {
        name
        for name in taskpool.__all__
        if isinstance(getattr(taskpool, name), type)
        and issubclass(getattr(taskpool, name), BaseException)
    }
    assert public <= covered


def test_hierarchy_mirrors_the_stdlib_where_it_should() -> None:
    assert issubclass(PoolClosedError, ValueError)  # what multiprocessing.Pool raises after close()
    assert issubclass(JobTimeoutError, TimeoutError)
    for cls in (
        PoolClosedError,
        WorkerCrashedError,
        JobTimeoutError,
        SerializationError,
        InitializerError,
    ):
        assert issubclass(cls, TaskpoolError)
    assert not issubclass(RemoteTraceback, TaskpoolError)


def test_messages_say_what_happened_and_what_to_do() -> None:
    crashed = str(WorkerCrashedError(7, -signal.SIGKILL, "fetch"))
    assert "pid 7" in crashed
    assert "SIGKILL" in crashed
    assert "OOM" in crashed
    assert "Retry(on_crash=True)" in crashed
    assert "exited with code 3" in str(WorkerCrashedError(7, 3))
    assert "signal 200" in str(
        WorkerCrashedError(7, -200)
    )  # a number with no name still reads well
    assert "options(timeout=...)" in str(JobTimeoutError(1.0))
    stuck = str(
        JobTimeoutError(1.0, "f", "Current thread ...", "wait (jobs.py:3) <- f (jobs.py:9)")
    )
    assert "stopped, in wait (jobs.py:3) <- f (jobs.py:9)." in stuck
    assert ".stack" in stuck
    oom = str(WorkerCrashedError(7, -signal.SIGKILL, "load", oom_killed=True))
    assert "killed by the out-of-memory killer" in oom
    assert "OOM killer sends" not in oom  # no guess where the kernel said so
    assert "could not pickle the arguments of job 'f' in the parent" in str(
        SerializationError("arguments", "pickle", "parent", "f")
    )
    assert "create a new pool" in str(PoolClosedError())
    assert "fix the initializer" in str(InitializerError("x"))
    assert "initializer connect failed" in str(InitializerError("x", "connect"))
    assert "initializer" not in str(WorkerStartError("too many open files"))
    assert isinstance(WorkerStartError("x"), InitializerError)
    assert str(RemoteTraceback("tb text")) == "tb text"


def test_errors_are_named_where_users_import_them() -> None:
    for p in ERRORS:
        error = p.values[0]
        assert type(error).__module__ == "taskpool", type(error)
        assert getattr(taskpool, type(error).__name__) is type(error)
