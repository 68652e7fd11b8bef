"""The worker template: a small process that imports the worker's modules once and forks every worker.

Runs in the template process, a fresh interpreter that `templates` starts from the pool's process (``python -c
"...template import main; main(...)"``), and, until `multiprocessing.spawn`'s ``_main`` takes over, in each
worker it forks. It has one thread: no lock of another thread can be inherited by a worker, as with
multiprocessing's forkserver, yet a worker costs one ``fork`` instead of a new interpreter.

Its life:

1. It imports what every worker needs (the worker's modules, what unpickling a worker's process object
   imports) and the pool's ``preload`` modules, or says why a preload module failed (then it exits); then
   the main module of the pool's process, as multiprocessing's forkserver does (see `_import_main`), and
   threadpoolctl where a native thread pool is loaded by then, all with the cyclic collector off; it freezes
   what it has (``gc.freeze``: the workers' collections leave those objects alone, and the pages they share),
   turns the collector back on and tells the pool's process that it is ready. cloudpickle follows once it is idle (`_warm_ups`).
2. It waits in one ``select`` on three things: the control socket, the pool's process's lifeline and its own
   SIGCHLD wake-up pipe.

   - A fork request on the control socket is one byte with file descriptors attached: the
     worker's data pipe (read end), its status pipe (write end), the resource tracker, then the descriptors
     its pickled process object refers to. The template forks; the child runs the process object exactly as
     multiprocessing's forkserver child does (``spawn._main``: the parent's sys.path, cwd and main module,
     then ``Process._bootstrap``). The template writes the child's pid to its status pipe, and its exit code
     once it has reaped it, so the pool's process sees the worker end as it does under forkserver.
   - End of file on the control socket: the pool's process is done with this template; it exits.
   - End of file on the lifeline: the pool's process is gone, however it died. The template kills each
     worker it forked still running, with its process group, and exits. Each worker watches the lifeline
     too (see `lineage`); this is the second net, and the one for a worker still starting.

   Where Linux has it, the template also asks the kernel for SIGKILL when the thread that started it ends
   (``PR_SET_PDEATHSIG``); `templates` asks for it only from the main thread, which lives as long as the
   process.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import importlib
import os
import selectors
import signal
import socket
import struct
import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAIN_NEXT",
    "READY",
    "main",
    "read_status",
    "recv_exactly",
    "recv_status",
    "write_status",
]

#: The status word the template sends once it is ready (a positive word is the length of an error text).
READY = 0
#: The status word it sends once the worker's modules and the preload modules are imported, before it
#: imports the main module, which may take as long as the program's own import of it did.
MAIN_NEXT = -1
# The most descriptors one fork request may carry (multiprocessing's forkserver allows as many).
MAX_FDS = 256
# A pid or an exit code on a status pipe, and a status word on the control socket.
_SIGNED = struct.Struct("q")
# PR_SET_PDEATHSIG from <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
# How long the template waits without a fork request before each warm-up step: the first workers are asked
# for just after it is ready, and a step under way (an import) would make them wait.
_IDLE = 0.05

# What every worker imports before its first job: imported here once, so that no worker pays for it.
_WORKER_MODULES = (
    "multiprocessing.connection",
    "multiprocessing.heap",
    "multiprocessing.sharedctypes",
    "multiprocessing.popen_forkserver",
    "taskpool._backends.process.worker",
    "taskpool._backends.process.forked",  # the class of each worker's pickled process object
)


def write_status(fd: int, value: int) -> None:
    """Write one signed word to ``fd`` whole."""
    data = memoryview(_SIGNED.pack(value))
    while data:
        data = data[os.write(fd, data) :]


def read_status(fd: int) -> int:
    """Read one signed word from ``fd``.

    Raises:
        EOFError: the writer closed its end first (the template is gone).
    """
    data = b""
    while len(data) < _SIGNED.size:
        chunk = os.read(fd, _SIGNED.size - len(data))
        if not chunk:
            raise EOFError("the worker template closed the pipe")
        data += chunk
    value: int = _SIGNED.unpack(data)[0]
    return value


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock``.

    Raises:
        EOFError: the other end closed first.
    """
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the worker template closed its socket")
        data += chunk
    return data


def recv_status(sock: socket.socket) -> int:
    """One signed word from ``sock`` (the template's status: `READY`, or the length of an error text)."""
    value: int = _SIGNED.unpack(recv_exactly(sock, _SIGNED.size))[0]
    return value


def main(
    control_fd: int,
    lifeline_fd: int,
    preload: list[str],
    sys_path: list[str],
    pdeathsig: bool,
    main_module: dict[str, Any],
) -> None:
    """The template process's whole life (see the module docstring).

    ``main_module`` is what multiprocessing's preparation data says of the pool's process's main module and
    ``sys.argv`` (see `_import_main`).
    """
    # No cyclic collection while it imports: the modules' objects live as long as the template, and the
    # collections that hundreds of imports would set off (each walking all it has so far) only cost time.
    # `_Server.serve` freezes what was imported and turns the collector back on before any worker is forked.
    gc.disable()
    if pdeathsig:
        _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to decide, as for workers
    sys.path[:] = sys_path
    control = socket.socket(fileno=control_fd)
    failure = _import_all(preload)
    if failure is not None:
        text = failure.encode("utf-8", "replace")
        with contextlib.suppress(OSError):  # the pool's process may be done with it already
            control.sendall(_SIGNED.pack(len(text)) + text)
        return
    with contextlib.suppress(OSError):  # like a worker, the template reads nothing from a terminal
        os.close(0)
        os.open(os.devnull, os.O_RDONLY)
    if main_module:
        try:
            control.sendall(_SIGNED.pack(MAIN_NEXT))
        except OSError:
            return  # the pool's process was done with this template before it was ready (or is gone)
        _import_main(main_module)
    _import_thread_control()
    _Server(control, lifeline_fd).serve(_warm_ups())


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the thread that started it ends (nothing elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the request took effect
            os._exit(1)


def _import_all(preload: list[str]) -> str | None:
    """Import the worker's modules and ``preload``: None, or what failed as text for the pool's error."""
    for name in _WORKER_MODULES:
        importlib.import_module(name)
    for name in preload:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            import traceback

            detail = "".join(traceback.format_exception(exc))
            return (
                f"preload module {name!r} failed to import: {type(exc).__name__}: {exc}\n{detail}"
            )
    return None


def _import_main(data: dict[str, Any]) -> None:
    """Import the pool's process's main module as ``__mp_main__``, as each worker would, and as
    multiprocessing's forkserver does: a worker forked after it finds it imported, and its preparation skips
    it (multiprocessing's ``spawn.prepare`` imports a main module only where it is not the one imported).

    A main module that fails here (it raises, exits, or makes a pool outside an ``if __name__ ==
    "__main__":`` block, which is refused while it is imported so) is left out: each worker then imports it
    itself, and the pool says what fails, as before.
    """
    if not data:
        return  # an interactive session, or ``python -c``: no main module to import
    from multiprocessing import process, spawn

    current: Any = process.current_process()
    before = sys.modules.get("__main__")
    current._inheriting = (
        True  # what the main module's guards look for while it is imported to start
    )
    try:
        spawn.prepare(data)
    except BaseException:
        if before is not None:
            sys.modules["__main__"] = before
        sys.modules.pop("__mp_main__", None)
    finally:
        del current._inheriting


def _warm_ups() -> list[Callable[[], object]]:
    """What workers may need but need not wait for: imported while the template has no fork to serve.

    cloudpickle: functions defined in the main module travel by value, but those of other modules do not.
    """
    return [functools.partial(importlib.import_module, "cloudpickle")]


def _import_thread_control() -> None:
    """Import threadpoolctl now if a native thread pool is loaded (by a preload or the main module): every
    worker would import it before it is ready, to limit that pool (see `taskpool._runtime.threadlimit`)."""
    from taskpool._runtime.threadlimit import NATIVE_MODULES

    if any(name in sys.modules for name in NATIVE_MODULES):
        with contextlib.suppress(
            Exception
        ):  # a worker imports it itself, and limits nothing if it fails
            importlib.import_module("threadpoolctl")


class _Server:
    """The template's loop: fork on request, report exit codes, end with the pool's process."""

    def __init__(self, control: socket.socket, lifeline_fd: int) -> None:
        self.control = control
        self.lifeline_fd = lifeline_fd
        # Worker pid -> the write end of its status pipe.
        self.children: dict[int, int] = {}
        self.sig_r, self.sig_w = os.pipe()
        os.set_blocking(self.sig_r, False)
        os.set_blocking(self.sig_w, False)
        # A handler that does nothing: with it, SIGCHLD is delivered and the wake-up fd written.
        self.old_sigchld = signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.sig_w)

    def serve(self, warm_ups: list[Callable[[], object]]) -> None:
        """Serve until the pool's process is gone or done; run ``warm_ups`` one by one while idle."""
        from multiprocessing import reduction

        # Everything imported so far lives as long as the template, and in each worker: out of the cyclic
        # collector's sight, a worker's collections never touch (and so never copy) the pages it shares
        # with the template, and have less to walk. Workers inherit the collector on.
        gc.freeze()
        gc.enable()
        control = self.control
        try:
            control.sendall(_SIGNED.pack(READY))
        except OSError:
            return  # the pool's process was done with this template before it was ready (or is gone)
        with selectors.DefaultSelector() as selector:
            selector.register(control, selectors.EVENT_READ)
            selector.register(self.lifeline_fd, selectors.EVENT_READ)
            selector.register(self.sig_r, selectors.EVENT_READ)
            while True:
                events = selector.select(_IDLE if warm_ups else None)
                if not events and warm_ups:
                    gc.disable()
                    # A worker imports it itself, and says what fails.
                    with contextlib.suppress(Exception):
                        warm_ups.pop(0)()
                    gc.freeze()
                    gc.enable()
                    continue
                ready = {key.fileobj for key, _ in events}
                if self.sig_r in ready:
                    self._reap()
                if self.lifeline_fd in ready:
                    self._kill_children()
                    return
                if control in ready:
                    try:
                        fds = reduction.recvfds(control, MAX_FDS)
                    except (EOFError, ConnectionError):
                        return  # the pool's process closed its end: it needs this template no more
                    except OSError as exc:
                        if exc.errno == errno.EINTR:
                            continue
                        raise
                    self._fork(fds)

    def _fork(self, fds: list[int]) -> None:
        data_r, status_w, tracker_fd, *inherited = fds
        with warnings.catch_warnings():
            # Python 3.12+ warns of a fork with threads; the template's only ones are a preloaded native
            # library's, which handles a fork itself (pthread_atfork).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = self._child(data_r, status_w, tracker_fd, inherited)
            except BaseException:
                sys.excepthook(*sys.exc_info())
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
            finally:
                os._exit(code)
        with contextlib.suppress(OSError):  # the pool's process may have given up on this worker
            write_status(status_w, pid)
        self.children[pid] = status_w
        for fd in (data_r, tracker_fd, *inherited):
            os.close(fd)

    def _child(self, data_r: int, status_w: int, tracker_fd: int, inherited: list[int]) -> Any:
        """In the forked worker: drop the template's own state, then run the process object it is sent."""
        from multiprocessing import forkserver, resource_tracker, spawn

        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, self.old_sigchld)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        self.control.close()
        for fd in (self.lifeline_fd, self.sig_r, self.sig_w, status_w, *self.children.values()):
            os.close(fd)
        # Where the process object's pickled descriptors are found (`multiprocessing.popen_forkserver`'s
        # _DupFd reads them there), and the resource tracker of the pool's process, as under forkserver.
        forkserver._forkserver._inherited_fds = inherited  # type: ignore[attr-defined]
        resource_tracker._resource_tracker._fd = tracker_fd  # type: ignore[attr-defined]
        return spawn._main(data_r, os.dup(data_r))

    def _reap(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.sig_r, 4096):
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            status_w = self.children.pop(pid, None)
            if status_w is not None:
                with contextlib.suppress(OSError):
                    write_status(status_w, os.waitstatus_to_exitcode(status))
                os.close(status_w)

    def _kill_children(self) -> None:
        """The pool's process is gone: kill every worker still running, and whatever its jobs started."""
        for pid in self.children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
