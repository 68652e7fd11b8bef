"""The process backend: jobs run in worker processes owned by one scheduler thread.

`backend` holds `ProcessBackend`, what the pool's threads call; `scheduler` the scheduler thread's loop;
`lifecycle` the scheduler's view of the worker processes (start, kill, reap, settle); `batching` the pure
policy of how many jobs a worker may hold; `protocol` the frames and messages between the scheduler and a
worker; `worker` the worker process's side. This package imports none of them, so that a worker process
imports only `worker` and what it needs.
"""
