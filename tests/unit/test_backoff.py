"""Retry delays grow, stay capped, are jittered, and are never zero (no tight loop); a
seeded source makes a loop's waits known in advance, and each loop has its own."""

from __future__ import annotations

import random

import pytest

from daemon.backoff import CAP_S, FIRST_S, JITTER_SEED_ENV, backoff_s, jitter, step_s


def test_backoff_bounds() -> None:
    rng = random.Random(3)
    for attempt in range(40):
        step = min(CAP_S, FIRST_S * 2**attempt)
        assert step_s(attempt) == step
        delays = [backoff_s(attempt, rng) for _ in range(200)]
        assert min(delays) >= step / 10 > 0
        assert max(delays) <= step <= CAP_S
        assert len(set(delays)) > 150  # jittered: retries of many daemons do not align


def test_a_seed_makes_each_loops_waits_known_and_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(JITTER_SEED_ENV, "7")
    first = [backoff_s(a, jitter("influx writer")) for a in range(8)]
    again = [backoff_s(a, jitter("influx writer")) for a in range(8)]
    other = [backoff_s(a, jitter("bench1: port")) for a in range(8)]
    assert first == again, "the same seed and loop: the same waits"
    assert first != other, "two loops never retry in step"
    monkeypatch.delenv(JITTER_SEED_ENV)
    assert jitter("influx writer").random() != jitter("influx writer").random(), "unseeded"
