"""Retry delays grow, stay capped, are jittered, and are never zero (no tight loop)."""

from __future__ import annotations

import random

from daemon.backoff import CAP_S as BACKOFF_CAP_S
from daemon.backoff import FIRST_S as BACKOFF_BASE_S
from daemon.backoff import backoff_s


def test_backoff_bounds() -> None:
    random.seed(3)
    for attempt in range(40):
        step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
        delays = [backoff_s(attempt) for _ in range(200)]
        assert min(delays) >= step / 10 > 0
        assert max(delays) <= step <= BACKOFF_CAP_S
        assert len(set(delays)) > 150  # jittered: retries of many daemons do not align
