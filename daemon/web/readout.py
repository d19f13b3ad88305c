"""What a bench screen reads at a glance, beside the trace: the hold (or compliance
step) under way, kept from the page's decimated points.

Fed once per 20 ms bucket (its lowest and highest pressure), never per sample, so it
costs the daemon nothing it would notice at 16,000 samples a second. Pure: times are
passed in.

A hold is a stretch, above the inflation threshold, whose every bucket stays within
``HOLD_BAND_ATM`` of the stretch's running mean; it is shown once it has lasted
``HOLD_SHOWN_S``. In a compliance run each step is a hold: its nominal pressure is the
mean rounded to the run's step (``step_atm``, a session tag, else 0.5 atm: the page
does it) and the pressure held is the mean itself. A burst run's hold at its rated pressure is the
same thing, with one step.
"""

from __future__ import annotations

from typing import Any

from drivers.units import KPA_PER_ATM

HOLD_BAND_ATM = 0.1
"""A pressure held by hand or by a controller stays within this of its mean."""
HOLD_SHOWN_S = 0.5


class Hold:
    """The hold under way, and how many holds this inflation has had (its steps)."""

    def __init__(self, threshold_kpa: float, baseline_kpa: float) -> None:
        self.threshold_kpa = threshold_kpa
        self.baseline_kpa = baseline_kpa
        self.band_kpa = HOLD_BAND_ATM * KPA_PER_ATM
        self.since = 0.0
        self.last = 0.0
        self._sum = 0.0
        self._n = 0
        self.steps = 0
        """Holds in the inflation under way (a new one counts once shown)."""
        self._counted = False

    def bucket(self, t: float, low: float, high: float) -> None:
        """One bucket: its time (s), lowest and highest pressure (kPa)."""
        if low <= self.baseline_kpa:
            self.steps = 0  # the inflation is over
        if low <= self.threshold_kpa:
            self._n = 0
            return
        mean = self._sum / self._n if self._n else 0.0
        if not self._n or low < mean - self.band_kpa or high > mean + self.band_kpa:
            self.since, self._sum, self._n, self._counted = t, 0.0, 0, False
        self._sum += (low + high) / 2
        self._n += 1
        self.last = t
        if not self._counted and self.held_s >= HOLD_SHOWN_S:
            self._counted = True
            self.steps += 1

    @property
    def held_s(self) -> float:
        return self.last - self.since if self._n else 0.0

    def state(self) -> dict[str, Any] | None:
        """The hold shown now (None: none under way). The page rounds ``held_kpa`` to the
        step's nominal pressure, with the session's ``step_atm`` if it has one."""
        if not self._n or self.held_s < HOLD_SHOWN_S:
            return None
        return {
            "since": self.since,
            "held_s": round(self.held_s, 1),
            "held_kpa": round(self._sum / self._n, 3),
            "step": self.steps,
        }
