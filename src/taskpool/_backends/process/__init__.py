"""The process backend: jobs run in worker processes owned by one scheduler thread.

`_scheduler` holds the parent's side (`ProcessBackend`), `_worker` the worker's, `_protocol` the frames between
them. This package imports none of them, so that a worker process imports only `_worker` and what it needs.
"""
