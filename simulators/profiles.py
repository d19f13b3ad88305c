"""Inflation profiles: what the operator (or the test rig) does to the syringe over time.

A profile is a sequence of segments (ramp, hold, quick release, burst) played by
``ProfilePlayer.advance(dt)``; time is injected, so tests run without sleeping.
Random choices come from the caller's seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

VACUUM_ATM = -0.9
RAMP_ATM_S = 1.0


@dataclass(frozen=True, slots=True)
class Ramp:
    to_atm: float
    rate_atm_s: float = RAMP_ATM_S


@dataclass(frozen=True, slots=True)
class Hold:
    seconds: float
    mark: bool = False
    """The operator presses the marker button as the hold begins."""


@dataclass(frozen=True, slots=True)
class Release:
    """Quick-release deflation: exponential approach to ``to_atm``."""

    to_atm: float = VACUUM_ATM
    tau_s: float = 0.25
    seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class Burst:
    """Longitudinal rupture: pressure collapses in ``collapse_s`` while fluid keeps flowing."""

    collapse_s: float
    leak_ml_s: float = 0.4


@dataclass(frozen=True, slots=True)
class Leak:
    """A balloon that cannot hold: the pressure bleeds away through the wall (or a bad
    seal) while the syringe stays put, so the delivered volume does not fall back."""

    tau_s: float = 1.5
    seconds: float = 8.0


Segment = Ramp | Hold | Release | Burst | Leak

PROFILES = ("clinical", "compliance", "burst", "fatigue", "leak")


def segments(
    name: str,
    rng: random.Random,
    *,
    rbp_atm: float = 14.0,
    cycles: int = 10,
    hold_s: float | None = None,
    ramp_atm_s: float | None = None,
) -> Iterator[Segment]:
    """The segments of profile ``name``; clinical repeats for ever, the others end.
    ``ramp_atm_s``: every ramp's rate (default: the profile's, 1 atm/s; fatigue 4)."""
    rate = ramp_atm_s or RAMP_ATM_S
    if name == "clinical":
        while True:
            yield Hold(2.0)
            yield Ramp(round(rng.uniform(6, 12), 1), rate)
            yield Hold(hold_s if hold_s is not None else rng.uniform(10, 60), mark=True)
            yield Release()
            yield Hold(3.0)
            yield Release(to_atm=0.0, tau_s=0.3, seconds=1.0)
    elif name == "compliance":
        yield Hold(1.0)
        step = 1.0
        while step <= rbp_atm + 1e-9:
            yield Ramp(step, rate)
            yield Hold(hold_s if hold_s is not None else 5.0, mark=True)
            step += 1.0
        yield Release()
        yield Hold(2.0)
    elif name == "burst":
        yield Hold(1.0)
        yield Ramp(rbp_atm + rng.uniform(2, 6), rate)
        yield Burst(collapse_s=rng.uniform(0.05, 0.2))
        yield Hold(5.0)
    elif name == "leak":
        yield Hold(1.0)
        yield Ramp(round(rbp_atm * rng.uniform(0.4, 0.6), 2), rate)
        yield Hold(0.5)
        yield Leak()
        yield Hold(2.0)
    elif name == "fatigue":
        yield Hold(1.0)
        for _ in range(cycles):
            yield Ramp(rbp_atm, rate_atm_s=ramp_atm_s or 4.0)
            yield Hold(hold_s if hold_s is not None else 1.0, mark=True)
            yield Release(seconds=1.0)
            yield Hold(0.5)
    else:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")


class ProfilePlayer:
    """Plays segments; ``pressure_atm`` is the true line pressure now."""

    def __init__(self, segs: Iterator[Segment]) -> None:
        self._segs = segs
        self.pressure_atm = 0.0
        self.burst = False
        self.leaking = False
        """A ``Leak`` began: the delivered volume stays where it was."""
        self.leak_ml = 0.0
        self.finished = False
        self._leak_rate = 0.0
        self._seg: Segment | None = None
        self._elapsed = 0.0
        self._start_p = 0.0
        self.marks = 0
        self._next()

    def _next(self) -> None:
        self._seg = next(self._segs, None)
        self._elapsed = 0.0
        self._start_p = self.pressure_atm
        if self._seg is None:
            self.finished = True
        elif isinstance(self._seg, Hold) and self._seg.mark:
            self.marks += 1
        elif isinstance(self._seg, Burst):
            self.burst = True
            self._leak_rate = self._seg.leak_ml_s
        elif isinstance(self._seg, Leak):
            self.leaking = True

    def advance(self, dt: float) -> None:
        """Move time on by ``dt`` seconds."""
        self.leak_ml += self._leak_rate * dt
        while dt > 0 and self._seg is not None:
            seg = self._seg
            if isinstance(seg, Ramp):
                direction = 1.0 if seg.to_atm >= self.pressure_atm else -1.0
                need = abs(seg.to_atm - self.pressure_atm) / seg.rate_atm_s
                step = min(dt, need)
                self.pressure_atm += direction * seg.rate_atm_s * step
                dt -= step
                if step >= need:
                    self.pressure_atm = seg.to_atm
                    self._next()
                continue
            duration = seg.collapse_s if isinstance(seg, Burst) else seg.seconds
            step = min(dt, duration - self._elapsed)
            self._elapsed += step
            dt -= step
            if isinstance(seg, Leak):
                self.pressure_atm = 0.02 + (self._start_p - 0.02) * math.exp(
                    -self._elapsed / seg.tau_s
                )
            elif isinstance(seg, Release):
                self.pressure_atm = seg.to_atm + (self._start_p - seg.to_atm) * math.exp(
                    -self._elapsed / seg.tau_s
                )
            elif isinstance(seg, Burst):
                frac = min(1.0, self._elapsed / seg.collapse_s)
                self.pressure_atm = self._start_p * (1 - frac) + 0.02 * frac
            if self._elapsed >= duration - 1e-12:
                self._next()
