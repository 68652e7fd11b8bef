"""taskpool's benchmark harness: ``python -m benchmarks`` from the project root.

Processes: the harness parent (`benchmarks._harness`, via `benchmarks.__main__`) plans the run and writes the
reports (`benchmarks._report`); every sample runs in a fresh child, ``python -m benchmarks._run``, which drives
one contender (`benchmarks._contenders`, whose adapters are in `benchmarks._adapters` and `benchmarks._ray`)
through one scenario (`benchmarks._scenarios`, timed in `benchmarks._run`, `benchmarks._arrays` and
`benchmarks._faults`); the pools' workers run the functions in `benchmarks._jobs`.
"""
