"""The pool's side of the worker template (see `template`): start it, share it, fork workers from it, end it.

Runs in the pool's process: `start_early` and `acquire` in the thread that makes a pool (they start a
template without waiting for it, before the pool's backend is imported) and `acquire` in the scheduler thread
(before each worker starts); `Template.fork` in scheduler threads, one at a time per template (its lock); the fork hook in the child of any fork of this
process; the exit hook at interpreter exit.

**Sharing.** One template per ``preload`` list, shared by every pool of this process that asks for the same
list, and kept until the process exits, so that a later pool starts its workers as fast as the first pool's
replacements: a fork, plus the worker's own start. Its environment is this process's when it started (as
multiprocessing's forkserver's is); each worker still gets this process's sys.path, working directory and main
module when it starts, through multiprocessing's preparation data. The template imports that main module
once, as multiprocessing's forkserver does (see `template`): a worker then finds it imported, and a
replacement starts without running it again. The worker itself is a `forked.TemplateProcess`.

**Lifetime.** The template ends when this process closes its end of the control socket (the exit hook, or
the process's death) and, however this process ends, at the end of file of its lifeline (`lineage`). A fork
of this process forgets the templates (a fork hook): they belong to the parent, and the child starts its own.
A template found dead (killed by someone) is replaced at the next `acquire`; the worker start that found it
fails with ``EAGAIN``, which the scheduler retries (`startup.SpawnBackoff`).
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import process, reduction, spawn, util
from typing import Any

from ..._errors import RemoteTraceback
from ..._runtime.hooks import register_once
from .lineage import lifeline_fd
from .template import MAIN_NEXT, READY, read_status, recv_exactly, recv_status

__all__ = [
    "READY_TIMEOUT",
    "Template",
    "acquire",
    "available",
    "default_start_method",
    "start_early",
    "uses_template",
]

#: How long a new template may take to import the worker's and the ``preload`` modules before it is taken
#: for stuck (the scheduler then retries with a new one). Long enough for a slow machine. The main module's
#: import, which comes after, has no deadline: it takes what it takes in each worker under spawn too.
READY_TIMEOUT = 60.0
# How long one wait for the template's status lasts before the waiter checks whether to give up.
_SLICE = 0.05
# How far a template has come (`Template._stage`).
_STARTING, _IMPORTED, _READY = 0, 1, 2
# How long the exit hook waits for a template to exit on end of file before it kills it.
_EXIT_GRACE = 1.0
_COMMAND = (
    "import sys; sys.path[:] = {path!r}; "
    "from taskpool._backends.process.template import main; "
    "main({control}, {lifeline}, {preload!r}, {path!r}, {pdeathsig!r}, {main!r})"
)

_lock = threading.Lock()
_templates: dict[tuple[str, ...], Template] = {}


def available() -> bool:
    """Whether this platform can pass file descriptors to a template (Unix sockets with SCM_RIGHTS)."""
    return bool(reduction.HAVE_SEND_HANDLE) and hasattr(socket, "AF_UNIX")


def default_start_method() -> str:
    """forkserver where the platform has it (fork after threads start is unsafe), spawn elsewhere."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def uses_template(start_method: str) -> bool:
    """Whether a pool with ``start_method`` forks its workers from a template: forkserver's safety at
    fork's speed."""
    return start_method == "forkserver" and available()


def start_early(start_method: str | None, preload: tuple[str, ...]) -> None:
    """Start the template a new process pool will fork its workers from, if it uses one (the thread that
    makes the pool, before the pool's backend is imported).

    A new template spends most of its start importing; started here, it does so while this process imports
    the rest of the backend, not after. Nothing is started in a process still importing its main module to
    start (the backend's constructor refuses the pool there).
    """
    if getattr(process.current_process(), "_inheriting", False):
        return
    if uses_template(start_method or default_start_method()):
        acquire(preload)


def acquire(preload: tuple[str, ...]) -> Template:
    """The running template for ``preload``, started now (not waited for) if there is none or it died."""
    register_once("worker templates", at_exit=_close_all, after_fork_in_child=_forget_all)
    with _lock:
        template = _templates.get(preload)
        if template is None or not template.alive():
            if template is not None:
                template.close(0.0)
            template = _templates[preload] = Template(preload)
        return template


class Template:
    """A template process started by this process, and the socket that asks it for workers."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        self.preload = preload
        # Held while a fork request is sent, and while status words are read.
        self._lock = threading.Lock()
        #: How far the template has come: `_STARTING`, `_IMPORTED` (the main module is next) or `_READY`.
        self._stage = _STARTING
        self._started = time.monotonic()
        #: Why the template cannot serve (it died, or a preload module failed), once known.
        self.failure: BaseException | None = None
        self._exitcode: int | None = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            watched = lifeline_fd()
            command = _COMMAND.format(
                path=list(sys.path),
                control=theirs.fileno(),
                lifeline=watched,
                preload=list(preload),
                # Linux ties the signal to the starting thread's end: ask only where that is the process's.
                pdeathsig=threading.current_thread() is threading.main_thread(),
                main=_main_module(),
            )
            exe = spawn.get_executable()
            args = [exe, *util._args_from_interpreter_flags(), "-c", command]  # type: ignore[attr-defined]
            start: Any = util.spawnv_passfds  # what multiprocessing starts its own helpers with
            self.pid: int = start(exe, args, [theirs.fileno(), watched])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours

    def alive(self) -> bool:
        """Whether the template may still serve (it may die at any moment all the same)."""
        if self.failure is not None or self._exitcode is not None:
            return False
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return True
            self._exitcode = os.waitstatus_to_exitcode(status)
        return False

    def wait_imported(self) -> None:
        """Wait until the template has imported the worker's and the ``preload`` modules (any thread).

        Raises:
            ImportError: a preload module failed to import there (its traceback as the cause).
            OSError: the template ended, or had not imported them `READY_TIMEOUT` seconds after it started
                (``EAGAIN``: try again).
        """
        self._await(_IMPORTED, None)

    def _await(self, stage: int, abandon: Callable[[], bool] | None) -> None:
        """Wait until the template has reached ``stage``, reading its status words (any thread).

        Several threads may wait at once: each waits for the socket in slices, outside the lock, and reads
        under it whatever words have come. The main module may take as long to import as it took the
        program (there is no deadline once the template says it is next); ``abandon`` is asked between
        slices, so that a pool being terminated does not wait for that.
        """
        while True:
            with self._lock:
                self._read_words()
                if self.failure is not None:
                    raise self.failure
                if self._stage >= stage:
                    return
                if self._stage < _IMPORTED and time.monotonic() > self._started + READY_TIMEOUT:
                    self.failure = OSError(
                        errno.EAGAIN, "the worker template hung before it had imported its modules"
                    )
                    raise self.failure
            if abandon is not None and abandon():
                raise OSError(errno.EAGAIN, "the pool is being terminated: no worker starts")
            select.select([self._sock], [], [], _SLICE)

    def _read_words(self) -> None:
        """Read the status words that have come, and move `_stage` on (with the lock held)."""
        sock = self._sock
        while self._stage < _READY and self.failure is None:
            if not select.select([sock], [], [], 0)[0]:
                return
            try:
                word = recv_status(sock)  # sent whole: once it begins to come, it comes
                if word == MAIN_NEXT:
                    self._stage = _IMPORTED
                elif word == READY:
                    self._stage = _READY
                else:
                    text = recv_exactly(sock, word).decode("utf-8", "replace")
                    first, _, detail = text.partition("\n")
                    error = ImportError(
                        f"{first} (in the worker template, before any worker started)"
                    )
                    error.__cause__ = RemoteTraceback(detail)
                    self.failure = error
            except (OSError, EOFError) as exc:
                self.failure = OSError(
                    errno.EAGAIN, f"the worker template process ended before it was ready ({exc!r})"
                )

    def fork(self, fds: list[int], abandon: Callable[[], bool] | None = None) -> tuple[int, int]:
        """Ask the template for a worker that inherits ``fds``: ``(status_r, data_w)`` (scheduler thread).

        The caller writes the worker's pickled preparation data and process object to ``data_w`` and reads
        its pid, then its exit code, from ``status_r`` (see `template`). A template still starting is waited
        for first, until ``abandon()`` is true.

        Raises:
            OSError: the template is gone (``EAGAIN``: a new one starts on the next attempt), or the wait
                was abandoned (``EAGAIN`` too).
            ImportError: a preload module failed to import in the template.
        """
        from multiprocessing import resource_tracker  # here: not needed to start the template

        # Workers share this process's resource tracker, as under forkserver.
        tracker: int = resource_tracker.getfd()  # type: ignore[assignment]
        self._await(_READY, abandon)
        with self._lock:
            data_r, data_w = os.pipe()
            status_r, status_w = os.pipe()
            try:
                reduction.sendfds(self._sock, [data_r, status_w, tracker, *fds])
            except BaseException as exc:
                util.close_fds(status_r, data_w)  # type: ignore[attr-defined]
                if isinstance(exc, OSError):
                    raise self._gone(exc) from exc
                raise
            finally:
                util.close_fds(data_r, status_w)  # type: ignore[attr-defined]
        return status_r, data_w

    def read_pid(self, status_r: int) -> int:
        """The pid of the worker just forked, from its status pipe."""
        try:
            return read_status(status_r)
        except (OSError, EOFError) as exc:
            raise self._gone(exc) from exc

    def _gone(self, exc: BaseException) -> OSError:
        self.failure = OSError(errno.EAGAIN, f"the worker template process ended ({exc!r})")
        return self.failure

    def close(self, grace: float) -> None:
        """End the template: close the control socket, then wait ``grace`` seconds before killing it."""
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._exitcode is not None:
            return
        deadline = time.monotonic() + grace
        pause = 0.001
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                self._exitcode = os.waitstatus_to_exitcode(status)
                return
            if time.monotonic() >= deadline:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                return
            time.sleep(pause)  # bounded by grace; the template exits at once on end of file
            pause = min(pause * 2, 0.05)

    def forget(self) -> None:
        """In a forked child: the template is the parent's; drop this copy of the socket."""
        with contextlib.suppress(OSError):
            self._sock.close()


def _main_module() -> dict[str, Any]:
    """What a worker's preparation data says of this process's main module (its path or name) and of
    ``sys.argv``: the template imports the main module once, as each worker would (see `template`)."""
    data = spawn.get_preparation_data("template")
    keys = ("sys_argv", "init_main_from_path", "init_main_from_name")
    return {key: data[key] for key in keys if key in data}


def _close_all() -> None:
    """The exit hook: end every template (pools were terminated before, by their own exit hook)."""
    with _lock:
        templates = list(_templates.values())
        _templates.clear()
    for template in templates:
        template.close(_EXIT_GRACE)


def _forget_all() -> None:
    """The fork hook, in the child: the templates are the parent's."""
    global _lock
    _lock = threading.Lock()  # the parent's may have been held by another thread at the fork
    for template in _templates.values():
        template.forget()
    _templates.clear()
