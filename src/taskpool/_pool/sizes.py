"""Sizes in bytes written by people: ``"512MB"``, ``"2GiB"``, ``"1.5G"``, or a plain int.

A pure function; runs in the thread that makes a pool.
"""

from __future__ import annotations

import re

__all__ = ["parse_size"]

# Decimal units as written on disks and in Dask ("GB", and "G" alone, are 10**9); binary units with an "i".
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_size(name: str, value: object) -> int | None:
    """``value`` in bytes: an int, or a string like ``"512MB"``, ``"2GiB"``, ``"1.5G"``; None stays None.

    Raises:
        ValueError: the value is not a positive size (the message shows what is accepted), as for any other
            whole-number option of a pool.
    """
    if value is None:
        return None
    hint = 'a positive number of bytes, or a string like "512MB", "2GiB" or "1.5G"'
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be {hint}, not {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        unit = _UNITS.get(match["unit"].lower()) if match else None
        if match is None or unit is None:
            units = ", ".join(u for u in _UNITS if u)
            raise ValueError(f"{name} must be {hint} (units: {units}), not {value!r}")
        size = int(float(match["number"]) * unit)
    if size <= 0:
        raise ValueError(f"{name} must be {hint}, not {value!r}")
    return size
