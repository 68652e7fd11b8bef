"""The manager server: its registered types, how it starts and stops, and how it dies with its parent.

Processes and threads:

- **The parent** runs `start_server` (in the thread that first asked for shared state, under
  ``SharedState._lock``) and `stop_server` (in the thread that shuts the state down).
- **The manager server process** runs `_server_init` in its main thread before it serves. The stdlib server
  then runs one thread per client connection; ``_exit_with_parent`` runs in one more, daemon, watchdog thread.

The server ignores SIGINT (Ctrl-C reaches the whole foreground process group; the parent decides when the server
stops), and its watchdog exits it when the parent dies, so it is never orphaned.

Security: the server listens on a Unix domain socket in a private temporary directory (mode 0700) where the
platform has AF_UNIX, on a named pipe on Windows, and never on a TCP address. Clients prove they know a random
32-byte authkey (``os.urandom(32)``) before the server reads anything from them.
"""

from __future__ import annotations

import array as _array
import builtins
import os
import queue as _queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
from multiprocessing import connection as _connection
from multiprocessing import parent_process
from multiprocessing import util as _mp_util
from multiprocessing.managers import BaseManager, Namespace
from typing import TYPE_CHECKING

from ._containers import (
    SharedArray,
    SharedCounter,
    SharedDict,
    SharedList,
    SharedNamespace,
    SharedValue,
)
from ._referents import ManagedCounter, ManagedDict, ManagedValue
from ._sync import SharedBarrier, SharedEvent, SharedLock, SharedQueue, SharedSemaphore

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

# Longest socket path we create. sun_path holds 108 bytes on Linux and 104 on macOS; keep a margin.
_MAX_SOCKET_PATH = 100
_SOCKET_NAME = "manager.sock"

# How long a SIGKILLed server may take to be reaped. SIGKILL cannot be caught, so this only waits for the kernel.
_KILL_GRACE = 1.0


class SharedManager(BaseManager):
    """The manager class: a BaseManager with only taskpool's types registered (never the stdlib's SyncManager).

    Runs in the parent; its server half runs in the manager server process.
    """

    # Set by BaseManager.start(); declared here because the stubs omit it.
    _process: BaseProcess


SharedManager.register("dict", ManagedDict, SharedDict)
SharedManager.register("list", builtins.list, SharedList)
SharedManager.register("namespace", Namespace, SharedNamespace)
SharedManager.register("lock", threading.Lock, SharedLock)
SharedManager.register("rlock", threading.RLock, SharedLock)
SharedManager.register("semaphore", threading.Semaphore, SharedSemaphore)
SharedManager.register("event", threading.Event, SharedEvent)
SharedManager.register("barrier", threading.Barrier, SharedBarrier)
SharedManager.register("queue", _queue.Queue, SharedQueue)
SharedManager.register("value", ManagedValue, SharedValue)
SharedManager.register("array", _array.array, SharedArray)
SharedManager.register("counter", ManagedCounter, SharedCounter)


def _server_init(socket_dir: str | None) -> None:
    """Prepare the manager server process; runs there, in its main thread, before it serves."""
    # Ctrl-C goes to the whole foreground process group. The server must outlive it so that the parent can
    # shut down in order (the stdlib also ignores SIGINT here; this does not rely on it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if socket_dir is not None:
        # A graceful stop (the manager's own finalizer, at the parent's exit or when it is garbage collected)
        # ends in the server's exit-time finalizers: remove the directory there, after the listener has
        # unlinked its socket (finalizers with priority 0 run before this one).
        _mp_util.Finalize(
            None, shutil.rmtree, args=(socket_dir,), kwargs={"ignore_errors": True}, exitpriority=-1
        )
    parent = parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with_parent,
            args=(parent.sentinel, socket_dir),
            name="taskpool-shared-watchdog",
            daemon=True,
        ).start()


def _exit_with_parent(sentinel: int, socket_dir: str | None) -> None:
    """Exit the manager server when its parent dies; runs in the server's watchdog thread.

    The stdlib server does not watch its parent: if the parent is killed, nobody sends it the shutdown message
    and it would serve an unreachable socket forever. The parent's sentinel becomes ready when the parent is
    gone (with fork, once every process forked from the parent after the server has exited too).
    """
    _connection.wait([sentinel])
    if socket_dir is not None:
        shutil.rmtree(socket_dir, ignore_errors=True)
    # Nobody is left to serve and the state is in memory only, so there is nothing to save: leave at once.
    os._exit(0)


def _private_socket_dir() -> str:
    """Create a directory only this user can enter (mkdtemp makes it 0700); return its path."""
    path = tempfile.mkdtemp(prefix="taskpool-")
    if len(os.path.join(path, _SOCKET_NAME)) > _MAX_SOCKET_PATH and os.path.isdir("/tmp"):
        # A long TMPDIR would overflow sun_path; /tmp is short and mkdtemp keeps the same mode.
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix="taskpool-", dir="/tmp")
    return path


def start_server(ctx: BaseContext) -> tuple[SharedManager, str | None]:
    """Start a manager server process with ``ctx``; runs in the parent and blocks until the server is ready.

    Returns:
        The manager, and the private directory that holds the server's socket (None on Windows, where the
        server listens on a named pipe). The caller removes the directory after `stop_server`.

    Raises:
        OSError: the platform has neither AF_UNIX nor named pipes (taskpool never opens a TCP port for this).
    """
    socket_dir: str | None = None
    address: str | None = None
    if sys.platform == "win32":
        pass  # address None: the stdlib picks a fresh local named pipe (AF_PIPE)
    elif hasattr(socket, "AF_UNIX"):
        socket_dir = _private_socket_dir()
        address = os.path.join(socket_dir, _SOCKET_NAME)
    else:
        raise OSError(
            "shared state needs a local socket (AF_UNIX) or a named pipe; this platform has neither, "
            "and taskpool will not open a TCP port for it"
        )
    try:
        manager = SharedManager(address=address, authkey=os.urandom(32), ctx=ctx)
        manager.start(initializer=_server_init, initargs=(socket_dir,))
    except BaseException:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise
    return manager, socket_dir


def stop_server(manager: SharedManager, timeout: float) -> None:
    """Stop the manager's server process within about ``timeout`` + 1 seconds; runs in the parent.

    The stdlib's graceful stop connects to the server and waits for its answer with no timeout, so a stuck
    server would hang the pool's close. A signal cannot hang.
    """
    process = manager._process
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(_KILL_GRACE)
    if process.is_alive():
        # Still there after SIGKILL (stuck in the kernel). Leave the manager's own finalizer registered rather
        # than call it: it would try the graceful stop and could block.
        return
    # The process is gone, so this only marks the manager shut down: its proxies then skip the decref round trip
    # when they are dropped, and its exit-time finalizer has nothing left to do.
    manager.shutdown()
