"""Sizes as people write them in a config: ``"2GiB"``, ``"500MB"``, or plain bytes."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(value: str | int) -> int:
    """``"2GiB"`` -> bytes. Plain integers are bytes."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if m is None:
        raise ValueError(f"not a size: {value!r} (use e.g. 500MB or 2GiB)")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])
