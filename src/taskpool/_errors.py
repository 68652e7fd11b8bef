"""The exception hierarchy.

Every class here pickles (it may cross a process boundary: a worker builds some of them, and the CLI or a
Dask client may receive them), and builds its message in ``__init__`` so that ``str(err)`` is the same on both
sides. One class per condition; every message names the job where there is one and says what to do next.

A job's *own* exception is never wrapped: it comes back as itself, with ``__cause__`` set to a
`RemoteTraceback` that carries the traceback text from the worker.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DaskConnectionError",
    "ForkedPoolError",
    "InitializerError",
    "JobTimeoutError",
    "PoolClosedError",
    "RemoteTraceback",
    "SerializationError",
    "SharedStateGoneError",
    "TaskpoolError",
    "WorkerCrashedError",
    "WorkerStartError",
]


class TaskpoolError(Exception):
    """Base class of every error that taskpool itself raises.

    Attributes:
        positions: for a job of `TaskPool.map`, `starmap`, `imap` or `imap_unordered`, the positions in the
            input of the items the job covered (a `range`); None for other jobs.
    """

    positions: range | None = None


class PoolClosedError(TaskpoolError, ValueError):
    """A job was submitted to a pool that is closed or terminated.

    It is also a `ValueError`, which is what `multiprocessing.Pool` raises in the same situation.
    """

    def __init__(self, state: str = "closed") -> None:
        self.state = state
        super().__init__(
            f"the pool is {state}; it takes no new jobs. Submit before close(), or create a new pool"
        )

    def __reduce__(self) -> tuple[type[PoolClosedError], tuple[str]]:
        return (type(self), (self.state,))


class ForkedPoolError(TaskpoolError, RuntimeError):
    """A pool (or its shared state) was used in a process forked from the one that made it.

    A forked child inherits the pool's objects but not its threads or its workers, which still belong to the
    parent: using them from the child would mix two processes' jobs, so the child gets this error instead.

    Attributes:
        owner: the process id of the process that made the pool.
        what: what was used ("pool", "shared state").
    """

    def __init__(self, owner: int, what: str = "pool") -> None:
        self.owner = owner
        self.what = what
        super().__init__(
            f"this {what} belongs to process {owner}; this process was forked from it and cannot use it "
            "(its workers and threads are the parent's). Create a new TaskPool in this process"
        )

    def __reduce__(self) -> tuple[type[ForkedPoolError], tuple[int, str]]:
        return (type(self), (self.owner, self.what))


class SharedStateGoneError(TaskpoolError, ConnectionError):
    """The shared-state server (the Manager process behind ``pool.shared``) is gone: killed, out of memory, or
    no longer answering. Raised by its proxies, in jobs and in the parent, with the connection error as the
    cause.

    The objects it held are lost. The next factory call (``pool.shared.dict()``, ...) starts a new server, so
    the pool can go on with new shared objects.

    Attributes:
        address: the server's address (its socket path), where known.
    """

    def __init__(self, address: str | None = None, reason: str = "") -> None:
        self.address = address
        self.reason = reason
        where = f" at {address}" if address else ""
        msg = f"the shared-state server{where} is gone"
        if reason:
            msg += f" ({reason})"
        msg += (
            "; the shared objects it held are lost. Make new ones with pool.shared (a new server starts), "
            "or keep state that must survive in your own storage"
        )
        super().__init__(msg)

    def __reduce__(self) -> tuple[type[SharedStateGoneError], tuple[str | None, str]]:
        return (type(self), (self.address, self.reason))


def _signal_name(signum: int) -> str:
    import signal  # here: the signal module's enums cost every import of taskpool, and few errors need them

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class WorkerCrashedError(TaskpoolError):
    """The worker process running a job died before the job finished.

    Attributes:
        pid: the worker's process id.
        exitcode: the process exit code as `multiprocessing` reports it (negative for a signal), or None.
        signal: the signal number that killed the worker, or None.
        job: the name of the job that was running, or None.
        oom_killed: the kernel's out-of-memory killer killed it (its cgroup's ``oom_kill`` count rose as it
            died by SIGKILL; Linux only).
    """

    def __init__(
        self,
        pid: int | None,
        exitcode: int | None,
        job: str | None = None,
        detail: str = "",
        oom_killed: bool = False,
    ) -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.signal = -exitcode if exitcode is not None and exitcode < 0 else None
        self.job = job
        self.detail = detail
        self.oom_killed = oom_killed
        if oom_killed:
            how = "was killed by the out-of-memory killer (SIGKILL): the job needs more memory than there is"
        elif self.signal is not None:
            how = f"was killed by {_signal_name(self.signal)}"
            if self.signal == 9:  # SIGKILL, the same number on every platform that has it
                how += " (the kernel's OOM killer sends SIGKILL when memory runs out)"
        elif exitcode is None:
            how = "was lost"
        else:
            how = f"exited with code {exitcode}"
        what = f"job {job!r}" if job else "a job"
        who = f"the worker process (pid {pid})" if pid is not None else "the worker"
        msg = f"{who} running {what} {how}"
        if detail:
            msg += f"; {detail}"
        msg += (
            ". Only this job failed; other jobs are unaffected. Retry it with Retry(on_crash=True) if it is safe"
            " to run again"
        )
        super().__init__(msg)

    def __reduce__(
        self,
    ) -> tuple[type[WorkerCrashedError], tuple[int | None, int | None, str | None, str, bool]]:
        return (type(self), (self.pid, self.exitcode, self.job, self.detail, self.oom_killed))


class JobTimeoutError(TaskpoolError, TimeoutError):
    """A job ran longer than its timeout; its worker was stopped and replaced.

    It is also a builtin `TimeoutError`.

    Attributes:
        timeout: the job's timeout in seconds.
        job: the job's name, or None.
        stack: where the worker was when it was stopped: the Python stack of each of its threads, as
            `faulthandler` writes it (most recent call first), or None where it could not be taken (the
            thread, inline and Dask backends; a job that replaced the worker's signal handler).
        where: the innermost frames of the job's own thread, ``"fn (file.py:12) <- caller (file.py:30)"``, as
            the message shows them, or None.
    """

    def __init__(
        self,
        timeout: float,
        job: str | None = None,
        stack: str | None = None,
        where: str | None = None,
    ) -> None:
        self.timeout = timeout
        self.job = job
        self.stack = stack
        self.where = where
        what = f"job {job!r}" if job else "the job"
        at = f", in {where}" if where else ""
        super().__init__(
            f"{what} ran longer than its timeout of {timeout:g} s and was stopped{at}. "
            "Give it a longer timeout (options(timeout=...)) if it needs longer"
            + ("; .stack holds every thread's stack" if stack else "")
        )

    def __reduce__(
        self,
    ) -> tuple[type[JobTimeoutError], tuple[float, str | None, str | None, str | None]]:
        return (type(self), (self.timeout, self.job, self.stack, self.where))


class SerializationError(TaskpoolError):
    """A part of a job could not be pickled or unpickled.

    Attributes:
        part: which part failed: ``"function"``, ``"arguments"``, ``"result"`` or ``"exception"``.
        stage: ``"pickle"`` or ``"unpickle"``.
        where: ``"parent"`` or ``"worker"``: the process in which it failed.
        job: the job's name, or None.
    """

    def __init__(
        self, part: str, stage: str, where: str, job: str | None = None, reason: str = ""
    ) -> None:
        self.part = part
        self.stage = stage
        self.where = where
        self.job = job
        self.reason = reason
        what = f"job {job!r}" if job else "the job"
        msg = f"could not {stage} the {part} of {what} in the {where}"
        if reason:
            msg += f": {reason}"
        msg += (
            ". Everything that crosses to a worker and back must pickle: use module-level functions and"
            " classes, or values without locks, sockets, open files or generators"
        )
        super().__init__(msg)

    def __reduce__(
        self,
    ) -> tuple[type[SerializationError], tuple[str, str, str, str | None, str]]:
        return (type(self), (self.part, self.stage, self.where, self.job, self.reason))


class InitializerError(TaskpoolError):
    """The pool's ``initializer`` raised in a worker, so the pool cannot run jobs.

    The pool does not respawn workers in a loop: it fails the pending jobs with this error and refuses new ones.
    """

    def __init__(self, reason: str, initializer: str | None = None) -> None:
        self.reason = reason
        #: The initializer's qualified name, where it is known.
        self.initializer = initializer
        named = f" {initializer}" if initializer else ""
        super().__init__(
            f"the pool's initializer{named} failed in a worker: {reason}. The pool stopped its workers "
            "and fails every job; fix the initializer and create a new pool"
        )

    def __reduce__(self) -> tuple[type[InitializerError], tuple[str, str | None]]:
        return (type(self), (self.reason, self.initializer))


class WorkerStartError(InitializerError):
    """The pool could not start its worker processes, for a reason other than its initializer.

    ``reason`` says what failed and what to do: the main module starts a pool when a worker imports it (no
    ``if __name__ == "__main__":`` guard), the system refused a new process again and again (too many open
    files, no memory), or workers died before they were ready. A subclass of `InitializerError`, so code that
    handles a pool that cannot start its workers handles both.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.initializer = None
        TaskpoolError.__init__(
            self,
            f"the pool could not start a worker process: {reason}. The pool stopped its workers and "
            "fails every job",
        )

    def __reduce__(self) -> tuple[type[InitializerError], tuple[str]]:  # type: ignore[override]
        return (type(self), (self.reason,))


class DaskConnectionError(TaskpoolError, ConnectionError):
    """The Dask scheduler could not be reached, or the connection to it was lost.

    It is also a builtin `ConnectionError`.

    Attributes:
        address: the scheduler's address.
        job: the job's name, or None.
    """

    def __init__(self, address: str, reason: str, job: str | None = None) -> None:
        self.address = address
        self.reason = reason
        self.job = job
        what = f"job {job!r} failed: " if job else ""
        super().__init__(
            f"{what}the Dask scheduler at {address} {reason}. Check that `dask scheduler` is running there and "
            "that this machine can reach it, then create a new pool"
        )

    def __reduce__(self) -> tuple[type[DaskConnectionError], tuple[str, str, str | None]]:
        return (type(self), (self.address, self.reason, self.job))


class CheckpointError(TaskpoolError):
    """A map's checkpoint file cannot be used: it is not a checkpoint, it was written for another function,
    it is damaged before its last record, another program holds it, or it cannot be written.

    Raised before any job runs, except for a write that fails while the map runs.

    Attributes:
        path: the checkpoint file.
        reason: what is wrong, and what to do.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"checkpoint {path}: {reason}")

    def __reduce__(self) -> tuple[type[CheckpointError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a worker; set as that exception's ``__cause__``."""

    def __init__(self, tb: str) -> None:
        self.tb = tb
        super().__init__(tb)

    def __str__(self) -> str:
        return self.tb


# Tracebacks and reprs name these classes where users import them (taskpool.WorkerCrashedError), not the private
# module that defines them. Pickle finds them there too: taskpool resolves its public names on first use.
for _cls in (
    TaskpoolError,
    PoolClosedError,
    ForkedPoolError,
    WorkerCrashedError,
    JobTimeoutError,
    SerializationError,
    InitializerError,
    WorkerStartError,
    DaskConnectionError,
    SharedStateGoneError,
    CheckpointError,
    RemoteTraceback,
):
    _cls.__module__ = "taskpool"
del _cls
