"""Faults a simulated device can be told to commit, per sentence, with seeded randomness."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import Any

# Junk never contains '$': a stray '$' followed by the right bytes could, in
# principle, form a valid sentence, and the truth file must say exactly what is valid.
_JUNK = bytes(b for b in range(256) if b != 0x24)


@dataclass(frozen=True, slots=True)
class Faults:
    """Probabilities per sentence or frame (0..1); each device uses the ones that apply."""

    bad_checksum: float = 0.0
    bad_field: float = 0.0
    truncate: float = 0.0
    garbage: float = 0.0
    drop: float = 0.0
    sync: float = 0.0
    """LBX: a sample whose raw bytes are SYNC1 SYNC2 (a valid frame with sync inside it)."""

    def updated(self, changes: dict[str, Any]) -> Faults:
        """A copy with ``changes`` applied; unknown names and bad values raise ValueError."""
        known = {f.name for f in fields(self)}
        clean: dict[str, float] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(known))}")
            p = float(value)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{key} must be a probability in 0..1")
            clean[key] = p
        return replace(self, **clean)


# Likewise, LBX junk never holds SYNC1 (0xA5): a false sync followed by the right
# bytes could pass the CRC by chance (1 in 65536), and the truth file must be exact.
_LBX_JUNK = bytes(b for b in range(256) if b != 0xA5)


def junk(rng: random.Random, *, binary: bool = False) -> bytes:
    """A burst of line noise: 1-40 random bytes, without '$' (or, ``binary``, SYNC1)."""
    alphabet = _LBX_JUNK if binary else _JUNK
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
