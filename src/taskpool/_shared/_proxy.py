"""The base of taskpool's proxies: one round trip per call, and pickling that lets a proxy reach a worker.

Runs in every process that holds a proxy (the parent and workers), in whichever thread calls it; the stdlib gives
each thread its own connection to the manager server.

A pickled proxy carries the server's authkey, because a proxy sent to a worker as a job argument must be able to
connect. Anyone who can read a pickled proxy can therefore connect to the server, and whatever the server sends
back is unpickled, which runs code: never write pickled proxies anywhere others can read them.
"""

from __future__ import annotations

import builtins
import os
from multiprocessing import util
from multiprocessing.managers import BaseProxy

# RebuildProxy is the stdlib's unpickler for proxies: besides rebuilding the proxy it recognises a proxy that
# arrives back inside its own server (a proxy stored in a shared dict) and hands out the object itself.
# typeshed does not declare it.
from multiprocessing.managers import RebuildProxy as _rebuild_proxy  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import ForkedPoolError, SharedStateGoneError

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.managers import Token


class SharedProxy(BaseProxy):
    """Base of every taskpool proxy. Each method call is one round trip to the manager server.

    Runs in whichever process and thread holds the proxy; each thread has its own connection to the server.
    """

    # The server allows only the methods named here; `BaseManager.register` reads this attribute.
    _exposed_: ClassVar[tuple[str, ...]] = ()

    # Set by BaseProxy.__init__; declared here because the stubs omit them.
    _token: Token
    _serializer: str
    _authkey: bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)  # connects to the server (to count the reference)
        except (ConnectionError, EOFError) as exc:
            token = args[0] if args else kwargs.get("token")
            address = getattr(token, "address", None)
            raise SharedStateGoneError(
                address if isinstance(address, str) else None, f"{type(exc).__name__}: {exc}"
            ) from exc
        # The process that may use this proxy: where it was made or unpickled, or a process multiprocessing
        # started from there (it runs the after-fork hooks). A process forked from it by a plain os.fork()
        # inherits the object but not the right to use the parent's connection and state.
        self._owner_pid = os.getpid()
        util.register_after_fork(self, SharedProxy._reown)

    def _reown(self) -> None:
        self._owner_pid = os.getpid()

    def _call(self, method: str, /, *args: Any) -> Any:
        if self._owner_pid != os.getpid():
            raise ForkedPoolError(self._owner_pid, "shared state")
        # The stubs declare _callmethod as returning None; it returns the server's answer.
        call: Callable[..., Any] = self._callmethod
        try:
            return call(method, args)
        except (ConnectionError, EOFError) as exc:
            # The connection failed, not the method: the method's own exceptions come back as themselves.
            raise SharedStateGoneError(_address(self), f"{type(exc).__name__}: {exc}") from exc

    def __reduce__(self) -> tuple[Any, tuple[Any, Any, str, builtins.dict[Any, Any]]]:
        # The stdlib includes the authkey only while spawning a process, so a proxy sent later (as a job
        # argument, through a pipe) would connect with the receiving process's own authkey and be refused.
        # The key goes with the proxy; see the module docstring.
        kwds = {"authkey": bytes(self._authkey)}
        return (_rebuild_proxy, (type(self), self._token, self._serializer, kwds))


def _address(proxy: SharedProxy) -> str | None:
    address = getattr(proxy._token, "address", None)
    return address if isinstance(address, str) else None
