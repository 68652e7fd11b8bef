"""Small, self-contained workloads for the README, the docs and the ``taskpool`` command.

Every function here is defined at module level so that a worker under any start method can import it, and each
is deterministic, so that its results can be checked. They run wherever they are called: in the caller when
called directly, in a worker process when submitted to a pool.

Try them from a shell::

    taskpool run taskpool.examples:collatz_steps --range 1 100001 --chunksize 200 -o steps.jsonl
    taskpool demo
"""

from __future__ import annotations

import os
import threading
import time

__all__ = [
    "collatz_steps",
    "count_primes",
    "is_prime",
    "prime_limit_for",
    "slow_square",
    "whoami",
]


def is_prime(n: int) -> bool:
    """Whether ``n`` is a prime, by trial division (pure Python, deliberately CPU-bound).

    Raises:
        TypeError: ``n`` is not a whole number.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"is_prime takes a whole number, not {n!r}")
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0:
        return False
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


def count_primes(limit: int) -> int:
    """How many primes are below ``limit``, by trial division of every number (pure Python).

    The cost grows as about ``limit ** 1.5``; `prime_limit_for` picks a limit for a wanted duration. It holds
    the GIL the whole time, so only processes (not threads) run several at once.

    Raises:
        TypeError: ``limit`` is not a whole number.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"count_primes takes a whole number, not {limit!r}")
    count = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
    return count


def prime_limit_for(seconds: float) -> int:
    """A ``limit`` for which `count_primes` takes about ``seconds`` on this machine (runs in the caller).

    It times a small run (a few hundredths of a second) and scales by the ``limit ** 1.5`` growth.
    """
    probe = 20_000
    start = time.perf_counter()
    count_primes(probe)
    elapsed = max(time.perf_counter() - start, 1e-4)
    return max(probe, int(probe * (seconds / elapsed) ** (2 / 3)))


def collatz_steps(n: int) -> int:
    """How many steps of the Collatz map (``n/2`` if even, ``3n+1`` if odd) take ``n`` down to 1.

    ``collatz_steps(1) == 0`` and ``collatz_steps(27) == 111``.

    Raises:
        ValueError: ``n`` is below 1, where the sequence never reaches 1. Start ranges at 1:
            ``taskpool run taskpool.examples:collatz_steps --range 1 1001``.
        TypeError: ``n`` is not a whole number.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"collatz_steps takes a whole number, not {n!r}")
    if n < 1:
        raise ValueError(
            f"collatz_steps needs n >= 1, not {n}: the sequence from {n} never reaches 1"
        )
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def slow_square(x: float, delay: float = 0.05) -> float:
    """``x * x`` after sleeping ``delay`` seconds: stands in for I/O-bound work (a request, a query)."""
    time.sleep(delay)
    return x * x


def whoami() -> dict[str, object]:
    """Where this call ran: the process id, the parent's process id and the thread name."""
    return {"pid": os.getpid(), "ppid": os.getppid(), "thread": threading.current_thread().name}
