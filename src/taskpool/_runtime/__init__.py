"""The worker runtime: what runs where a job runs.

Running an attempt and carrying its outcome back (`attempt`), what a job prints and logs (`output`), the
pickling policy (`serialize`), and `get_logger` (`joblog`). Every backend uses it — the process backend's
workers, the thread and inline backends, Dask workers, `spawn` and the per-item wrapper of ``taskpool run`` —
so that these exist once. It imports the standard library and `taskpool._errors` only (cloudpickle on first
use), so a worker process starts light.
"""
