"""Reading where a job was stuck out of a faulthandler dump (no process)."""

from __future__ import annotations

import os

from taskpool._backends.process import stacks

PKG = os.path.dirname(os.path.dirname(os.path.abspath(stacks.__file__)))
WORKER = os.path.join(PKG, "process", "worker.py")
ATTEMPT = os.path.join(os.path.dirname(PKG), "_runtime", "attempt.py")

DUMP = f"""Thread 0x00007f2e3f7996c0 (most recent call first):
  File "{PKG}/process/lineage.py", line 106 in _wait_for_end_of_lifeline
  File "/usr/lib/python3.11/threading.py", line 982 in run

Current thread 0x00007f2e41065b80 (most recent call first):
  File "/home/me/app/db.py", line 40 in wait_for_lock
  File "/home/me/app/db.py", line 12 in query
  File "/home/me/app/jobs.py", line 7 in report
  File "/home/me/app/jobs.py", line 3 in main_job
  File "{ATTEMPT}", line 90 in call
  File "{WORKER}", line 202 in _run_job
  File "{WORKER}", line 290 in worker_main
  File "<string>", line 1 in <module>
"""


def test_where_names_the_innermost_frames_of_the_job() -> None:
    where = stacks.where_stuck(DUMP)
    assert where == "wait_for_lock (db.py:40) <- query (db.py:12) <- report (jobs.py:7)"
    assert stacks.where_stuck(DUMP, frames=1) == "wait_for_lock (db.py:40)"


def test_no_job_thread_no_where() -> None:
    idle = DUMP.replace("_run_job", "read_frame")  # between jobs: no thread runs one
    assert stacks.where_stuck(idle) is None
    assert stacks.where_stuck(None) is None
    assert stacks.where_stuck("") is None
    assert stacks.where_stuck("garbage\nmore garbage\n") is None


def test_a_dump_cut_short_still_reads() -> None:
    cut = DUMP[: DUMP.index("jobs.py")]  # died mid-dump: no _run_job line reached
    assert stacks.where_stuck(cut) is None
