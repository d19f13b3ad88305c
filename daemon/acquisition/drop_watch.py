"""Whether a device drops more of what it sends than a lab would accept: a share of its
lines or frames over the last minute, said once when it starts and once when it ends.

A driver counts each drop by reason and records nothing of it; that is right, but a
device that drops most of its lines (a unit pvlog does not know, the wrong pattern)
must not look healthy. Pure: counts and times are passed in (every second, from the
daemon), so its rule is unit-tested without a device.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import NamedTuple

WINDOW_S = 60.0
MIN_SEEN = 20
"""Fewer lines or frames than this in the window are too few to judge by."""
NOT_FRAMES = frozenset({"garbage_bytes"})
"""Drop counters that count bytes, not lines or frames."""


class _Mark(NamedTuple):
    t: float
    good: int
    dropped: dict[str, int]


class DropWatch:
    def __init__(self, share: float, window_s: float = WINDOW_S) -> None:
        self.share = share
        self.window_s = window_s
        self._marks: deque[_Mark] = deque()
        self.degraded: str | None = None
        """Why the device is degraded now (None: it is not)."""
        self.top: str | None = None
        """The reason most of the window's drops had."""

    def check(self, now_s: float, good: int, dropped: Mapping[str, int]) -> str | None:
        """``good``: samples so far; ``dropped``: the driver's counters. Returns
        ``degraded`` or ``recovered`` when that changes, else None."""
        counts = {k: v for k, v in dropped.items() if k not in NOT_FRAMES}
        self._marks.append(_Mark(now_s, good, counts))
        while len(self._marks) > 1 and self._marks[1].t <= now_s - self.window_s:
            self._marks.popleft()
        base = self._marks[0]
        lost = {k: v - base.dropped.get(k, 0) for k, v in counts.items()}
        bad = sum(lost.values())
        seen = bad + good - base.good
        if seen < MIN_SEEN:
            return None
        share = bad / seen
        if share > self.share and self.degraded is None:
            self.top = max(lost, key=lambda k: lost[k])
            self.degraded = (
                f"{share:.0%} of its lines or frames dropped over the last minute "
                f"(over {self.share:.0%}), mostly {self.top}"
            )
            return "degraded"
        if share <= self.share and self.degraded is not None:
            self.degraded = None
            return "recovered"
        return None
