"""taskpool's benchmark harness: ``python -m benchmarks`` from the project root.

Processes: the harness parent (`benchmarks._harness`, via `benchmarks.__main__`) plans the run and writes the
reports (`benchmarks._report`); every sample runs in a fresh child, ``python -m benchmarks._run``, which drives
one contender (`benchmarks._contenders`) through one scenario (`benchmarks._scenarios`); the pools' workers
run the functions in `benchmarks._jobs`.
"""
