"""The Dask backend: runs jobs on a Dask distributed cluster, for when one machine is not enough.

`backend` holds the parent's side (`DaskBackend`), with `cluster` (the client and the local cluster),
`attempts` (the attempts on Dask), `callbacks` (Dask's threads, turning what Dask says into reports) and
`timer` (deadlines); `worker` holds what runs in Dask worker processes, and `protocol` the messages between
the two. This package imports none of them, so that a Dask worker imports only `worker` and what it needs.

Processes and threads
---------------------
::

    parent process (the pool)                           Dask scheduler            Dask worker processes
    caller threads ── submit() ── pickle fn+args ──►  client.submit(run) ─────►  task thread: run()
                                                                                  ├─ log_event(STARTED)
    client event-loop thread  ◄── STARTED (topic) ◄──────────────────────────────┘
      └─ Reporter.on_started: report STARTED, arm the deadline
    Dask's callback thread    ◄── task finished ◄──────────────────────────────── Envelope (result or error,
      └─ Reporter.on_done: fetch the envelope, report LOG, OUTPUT, then SUCCEEDED / FAILED   log records, output)
    "taskpool-dask-timer" thread (exactly 1): deadlines (JobTimeoutError) and failures found in submit()

The parent side never holds a lock while it calls into Dask or the sink: the `Attempts` table's lock guards only
the attempts sent to Dask and not yet reported, and their deadlines. Whoever takes an attempt out of the table
(the done callback, the timer, `stop`, `shutdown`) is the one that reports its outcome, so every attempt gets
exactly one terminal report.

What differs from the process backend (docs/scaling-out.md has the table):

* **Timeouts and stop** end the job's *future* on time (JobTimeoutError, or STOPPED) and cancel the Dask task,
  so a task that has not started never runs. A running task cannot be interrupted inside Dask (it runs in a
  thread of the worker process): on a cluster started here, whose workers run one job each, the worker process
  is killed and its nanny starts a new one, as the process backend does; on an existing cluster the task runs
  to its end on the worker and its result is thrown away. The clock of a timeout starts when the job starts
  on a worker (reported through the scheduler), not at submission.
* **Crashes**: a worker that dies while running a job fails it with `WorkerCrashedError` (pid of the Dask
  worker, exit code unknown). A cluster started here fails the job at the first death (Dask's
  ``allowed-failures`` is set to 0, and each worker holds one task at a time, so queued jobs are not hit);
  an existing cluster uses its own ``allowed-failures`` (Dask's default reruns a task on up to 3 more workers
  before it gives up).
* **Logs and prints** made in the job's own thread are captured on the worker and reported when the job ends
  (not live), log records before the outcome.
* **STARTED** is reported when the worker begins the task: the worker sends a Dask event through the
  scheduler (one small message per job, sent always: it also arms timeouts and tells a crashed job from the
  jobs that were only waiting on the same worker).
* **Shared state** (`pool.shared`) is not available: the Manager lives on the parent's machine. Use Dask's own
  ``distributed.Lock``, ``Variable`` or ``Queue``.
* Workers are Dask's: their ids in reports are Dask worker addresses (``"tcp://host:port"``). There are no
  WORKER_UP / WORKER_DOWN reports; Dask's nannies restart dead workers.
* taskpool (and the modules that hold your job functions) must be importable on every worker.
"""
