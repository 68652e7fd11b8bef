"""The core: what a pool is, whatever runs its jobs.

Jobs and their options (`job`), futures (`future`), the pool's state and outstanding jobs (`ledger`), the
`Report` a backend sends (`reports`), the `Backend` protocol (`backend`), the one event thread per pool
(`event_thread`) and what it does with reports (`outcomes`: retries, callbacks, events, futures), events and
their handlers (`events`), retry policies (`retry`), progress bars (`progress`) and writing past them (`screen`),
timers (`timers`), and the attempt loop of backends that run jobs in this process (`local`).

The core imports the worker runtime and the errors, never a backend or a front end (import contracts in
pyproject.toml). Each module's docstring says which threads run its code.
"""
