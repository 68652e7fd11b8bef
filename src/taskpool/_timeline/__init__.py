"""Timelines: a picture of a run, made from the pool's events.

- `record`: `Recorder`, the event handlers a pool made with ``timeline=True`` registers (event thread).
- `model`: the pure building of attempts, worker lives and lanes from what was recorded.
- `timeline`: `Timeline`, the snapshot users get, with its numbers and its ``save_*`` methods.
- `look`: what both pictures share (colours, legend, axis, words); `html`: the HTML page, by hand;
  `png`: the PNG, with matplotlib (imported only when a PNG is drawn).

The package sits beside the backends in the layers: the pool imports it, and it imports only the core's event
record and the errors. Nothing here is imported until a pool records or a timeline is made.
"""

from __future__ import annotations

from .model import TimelineAttempt, TimelineWorker
from .record import KINDS, Recorder
from .timeline import Timeline

__all__ = ["KINDS", "Recorder", "Timeline", "TimelineAttempt", "TimelineWorker"]
