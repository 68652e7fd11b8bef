"""Writing past progress bars: a line is never written between a bar's first drawing and its registration.

A tqdm bar draws itself as it is made. A writer that found no bar registered, and wrote while another
thread was drawing a new one, used to put its line on the bar's. The writer and the bar's maker now take
the same lock, which these tests show from two threads ordered by events.
"""

from __future__ import annotations

import io
import threading

from taskpool._core import screen
from taskpool._core.progress import make_bar

TIMEOUT = 10.0


def test_a_bar_is_not_made_while_a_line_is_written_past_none() -> None:
    inside, release, made = threading.Event(), threading.Event(), threading.Event()

    def write() -> None:
        with screen.past_bars():  # no bar registered: it writes straight away
            inside.set()
            assert release.wait(TIMEOUT)

    def make() -> None:
        with screen.new_bar():
            made.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(TIMEOUT)
    maker = threading.Thread(target=make)
    maker.start()
    # The maker waits for the line to be written: a bounded wait that must run out.
    assert not made.wait(0.2)
    release.set()
    assert made.wait(TIMEOUT)
    writer.join(TIMEOUT)
    maker.join(TIMEOUT)


def test_a_line_written_after_a_bar_is_made_goes_past_it() -> None:
    out = io.StringIO()
    bar = make_bar({"file": out, "mininterval": 0, "disable": False}, total=3)
    try:
        with screen.past_bars():
            out.write("a line\n")
        text = out.getvalue()
        # The bar was drawn, then cleared (a carriage return) before the line, then drawn again after it.
        before, _, after = text.partition("a line\n")
        assert "0/3" in before
        assert before.endswith("\r")
        assert "0/3" in after
    finally:
        bar.close()


def test_writers_past_bars_nest_without_a_deadlock() -> None:
    out = io.StringIO()
    bar = make_bar({"file": out, "disable": False}, total=1)
    try:
        with screen.past_bars(), screen.past_bars():
            out.write("nested\n")
        # A writer may make a bar: the lock is reentrant.
        with screen.past_bars(), screen.new_bar():
            pass
    finally:
        bar.close()
    assert "nested\n" in out.getvalue()
