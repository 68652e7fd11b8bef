"""The `TaskPool` front end: the façade, its submitting methods, the imap iterator, the active-pool stack.

Front ends (``@task``, the `Pool` drop-in, `spawn`, the command line) build on `TaskPool`; this package builds
on the core and reaches a backend only through `taskpool._backends.make_backend`. It imports nothing itself,
so that a module here (the active-pool stack) can be imported without the rest.
"""
