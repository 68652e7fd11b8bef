"""Manager-backed shared state: what ``pool.shared`` returns.

Processes and threads:

- **The parent** (the process that owns the pool) holds one `SharedState`. Constructing it starts nothing. The
  first factory call (``dict()``, ``counter()``, ...) starts one *manager server* process, from any thread;
  ``SharedState._lock`` makes sure only one starts. ``shutdown()`` stops it; the pool calls it when it closes.
- **The manager server process** owns every shared object (the *referent*). The stdlib server runs one thread
  per client connection, and every thread of every process that uses a proxy has its own connection, so two
  workers calling the same object run in two server threads at once. That is why the referents behind
  `SharedDict` and `SharedCounter` hold a lock: ``increment`` and ``add`` read, add and write under it, inside
  the server, so concurrent updates lose nothing. The server ignores SIGINT (Ctrl-C reaches the whole
  foreground process group; the parent decides when the server stops), and a watchdog thread in it exits the
  server when the parent dies, so it is never orphaned.
- **Proxies** live in the parent and in workers. Every proxy method call is one round trip: the call is pickled,
  sent over the socket, run in the server, and the result pickled back. So ``d[k] += 1`` is *two* round trips (a
  get, then a set) and another process can write between them: that update is lost. Use
  ``d.increment(k)``, ``counter.add()``, or hold a ``lock()`` around the read and the write.

Locks: ``SharedState._lock`` guards the state, the manager handle and the list of live proxies. It is held while
the server starts (a bounded wait for a process we own), never while a proxy call or user code runs. In the
server, each managed dict and counter has its own lock, held only around its own update.

Security: the server listens on a Unix domain socket in a private temporary directory (mode 0700) where the
platform has AF_UNIX, on a named pipe on Windows, and never on a TCP address. Clients prove they know a random
32-byte authkey (``os.urandom(32)``) before the server reads anything from them. Everything sent to the server
or back is pickled, and **unpickling runs code**: data in shared state is trusted exactly like the code of the
program itself. The authkey travels inside a pickled proxy (that is how a worker can connect), so do not write
pickled proxies anywhere others can read them.

Lifetime: every shared object lives until the pool closes. `SharedState` keeps a reference to each proxy it
made, because the server frees an object when the last proxy to it is dropped: a proxy created inline as a job
argument could otherwise be freed after it was pickled and before the worker unpickled it.

Layout (each module's docstring says which processes and threads run it):

- `_state`: `SharedState`, in the parent: lazy start, the factories, shutdown.
- `_server`: the manager class and its registered types, the server's start, stop and parent-death watchdog.
- `_referents`: the objects that live in the server behind taskpool's own types (locked dict, counter, value).
- `_proxy`: the base of every proxy (one round trip per call; pickling that carries the authkey).
- `_containers` and `_sync`: the proxies users hold, for data and for synchronisation primitives.

This package imports only the standard library and `taskpool._errors`.
"""

from __future__ import annotations

from ._containers import (
    SharedArray,
    SharedCounter,
    SharedDict,
    SharedList,
    SharedNamespace,
    SharedValue,
)
from ._state import SharedState
from ._sync import SharedBarrier, SharedEvent, SharedLock, SharedQueue, SharedSemaphore

__all__ = [
    "SharedArray",
    "SharedBarrier",
    "SharedCounter",
    "SharedDict",
    "SharedEvent",
    "SharedList",
    "SharedLock",
    "SharedNamespace",
    "SharedQueue",
    "SharedSemaphore",
    "SharedState",
    "SharedValue",
]
