"""A worker process forked from a worker template (see `templates`): multiprocessing's Process and Popen for it.

Runs in the pool's process, in the scheduler thread (`launch` starts a `TemplateProcess`; its Popen's
`poll` is called there too). Apart from `templates` so that starting a template early, before the pool's
backend is imported, needs none of what starting a worker does.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from multiprocessing import reduction, spawn, util
from multiprocessing.connection import wait
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from multiprocessing.popen_forkserver import Popen as ForkServerPopen
from typing import Any

from .template import read_status
from .templates import Template

__all__ = ["TemplateProcess"]


class _TemplatePopen(ForkServerPopen):
    """Starts a process by a fork of a template, the way multiprocessing's forkserver Popen does it from
    its server: the same pickled preparation data and process object, so the child runs the same code."""

    _fds: list[int]  # what duplicate_for_child collected while the process object was pickled
    #: The template ended before it wrote how the worker ended: the worker may live on, and nothing tells
    #: when it ends (the caller kills it, with its group, before it forgets it).
    template_lost = False

    def __init__(
        self, process_obj: Any, template: Template, abandon: Callable[[], bool] | None
    ) -> None:
        self._template = template
        self._abandon = abandon
        super().__init__(process_obj)

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        set_spawning_popen(self)  # the pickled descriptors land in self._fds (duplicate_for_child)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        status_r, data_w = self._template.fork(self._fds, self._abandon)
        # The worker's parent sentinel (multiprocessing.parent_process()): open while this Popen lives.
        parent_w = os.dup(data_w)
        self.sentinel = status_r
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, status_r))  # type: ignore[attr-defined]
        with open(data_w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = self._template.read_pid(status_r)

    def poll(self, flag: int = os.WNOHANG) -> int | None:
        """The worker's exit code from its status pipe, as forkserver's Popen reads it (255 if the template
        ended first, as there, with `template_lost` set)."""
        if self.returncode is None:
            if not wait([self.sentinel], 0 if flag == os.WNOHANG else None):
                return None
            try:
                self.returncode = read_status(self.sentinel)
            except (OSError, EOFError):
                self.template_lost = True
                self.returncode = 255
        code: int | None = self.returncode
        return code


class TemplateProcess(ForkServerProcess):
    """A worker process forked from ``template``: otherwise a forkserver process in every way.

    ``abandon``: asked while a template still starting is waited for; true, `start` gives up with ``EAGAIN``.
    """

    def __init__(
        self, template: Template, abandon: Callable[[], bool] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._template = template
        self._abandon = abandon

    @property
    def template_lost(self) -> bool:
        """Whether its template ended before it could say how this worker ended (see `_TemplatePopen`)."""
        return bool(getattr(getattr(self, "_popen", None), "template_lost", False))

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        # Taken off the object before it is pickled for the child, which has no use for them.
        template = process_obj.__dict__.pop("_template")
        abandon = process_obj.__dict__.pop("_abandon")
        return _TemplatePopen(process_obj, template, abandon)
