"""How a balloon failed, read from its trace: a burst, a leak, or not at all.

A lot passes on its rated burst pressure only if no balloon failed at or below it, so
a balloon that could not hold pressure must count as much as one that ruptured. The
detector (``daemon.acquisition.inflations``) finds bursts: a collapse from 80 % to 20 %
of the peak within 0.5 s with the delivered volume kept. A **leak** is the slow kind of
the same failure: after the peak the pressure falls to ``LEAK_FALL`` of it or lower,
not as a burst, while the fluid stays out of the syringe. Where it first gets there,
the delivered volume is compared with the balloon's own on the way up at that same
pressure: a release gives the fluid back, and the volume falls back onto the curve it
rose on; a leak loses it through the balloon, and the volume stays nearer the peak's
(``LEAK_KEPT`` of the way from the curve to the peak, or more). What happens after
(a syringe withdrawn once the balloon has leaked) changes nothing.

Where the volume cannot tell (no volume channel, or a balloon so stiff there that it
gives back almost nothing, less than ``VOLUME_SPAN`` of its volume), time does: a fall
from 80 % to 20 % of the peak taking ``LEAK_SLOW_S`` or longer is a leak (a release
takes a fraction of a second; the cautious reading fails the lot rather than passing
it), unless the peak had reached the test's maximum.

A burst ends a balloon: ``after_burst`` finds an inflation after it that burst too, or
rose again to half the burst pressure or more (a ruptured balloon holds none), which is
another balloon recorded under the same name, and the lot refuses it.

A burst specimen's **outcome**, in this order:

- ``burst`` or ``leak``: its first inflation that failed, at that inflation's peak;
- ``excluded``: its session has an ``exclude=<reason>`` tag: the operator's word,
  shown beside any failure its data holds;
- ``no failure``: it reached the test's maximum (``max_atm``, within ``MAX_BAND``)
  without failing;
- ``incomplete``: none of these: its data (or the operator) stopped first.

Pure: a trace and its inflations in, outcomes out.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

from daemon.acquisition.inflations import BURST_HIGH, BURST_LOW, Inflation
from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

LEAK_FALL = 0.5
"""A leak takes the pressure down to this fraction of the peak or lower."""
LEAK_KEPT = 0.5
"""Of the volume between the rising curve and the peak, a leak keeps at least this."""
VOLUME_SPAN = 0.02
"""Below this share of the peak's volume given back by a release, volume cannot tell."""
LEAK_SLOW_S = 1.0
"""Where volume cannot tell: a fall from 80 % to 20 % of the peak at least this slow."""
MAX_BAND = 0.02
"""A peak within this fraction below ``max_atm`` reached it."""
AGAIN = 0.5
"""After a burst, an inflation to this fraction of the burst pressure (or another burst)
is another balloon."""

OUTCOMES = ("burst", "leak", "no failure", "incomplete", "excluded")
FAILURES = ("burst", "leak")


class Failure(NamedTuple):
    mode: str
    """``burst`` or ``leak``."""
    inflation: Inflation

    @property
    def pressure_atm(self) -> float:
        return self.inflation.peak_kpa / KPA_PER_ATM


def failure_of(trace: Trace, f: Inflation, max_atm: float | None = None) -> Failure | None:
    """How inflation ``f`` of ``trace`` failed (None: it did not)."""
    if f.burst:
        return Failure("burst", f)
    t, p = trace.time_ns, trace.pressure_kpa
    start = bisect.bisect_left(t, f.start_ns)
    lo, hi = bisect.bisect_left(t, f.peak_ns), bisect.bisect_right(t, f.end_ns)
    half = next((i for i in range(lo, hi) if p[i] <= LEAK_FALL * f.peak_kpa), None)
    if half is None:
        return None  # it never fell that far: held, or the data ended at the top
    kept = _kept(trace, start, lo, half, f.volume_at_peak_ml)
    if kept is not None:
        return Failure("leak", f) if kept >= LEAK_KEPT else None
    if max_atm is not None and f.peak_kpa >= reached_kpa(max_atm):
        return None  # at the maximum: the operator's release ended the test
    low = next((i for i in range(half, hi) if p[i] <= BURST_LOW * f.peak_kpa), half)
    began = max((i for i in range(lo, half + 1) if p[i] >= BURST_HIGH * f.peak_kpa), default=lo)
    return Failure("leak", f) if (t[low] - t[began]) / 1e9 >= LEAK_SLOW_S else None


def _kept(trace: Trace, start: int, peak: int, at: int, peak_ml: float | None) -> float | None:
    """How much of what a release would give back is still out at ``at``: 0 on the
    rising curve, 1 at the peak's volume (None: the volume cannot tell)."""
    p, v = trace.pressure_kpa, trace.volume_ml
    now = v[at]
    rising = next((k for k in range(start, peak + 1) if p[k] >= p[at]), None)
    before = None if rising is None else v[rising]
    if peak_ml is None or now is None or before is None:
        return None
    span = peak_ml - before
    if span < VOLUME_SPAN * peak_ml:
        return None
    return (now - before) / span


def reached_kpa(max_atm: float) -> float:
    """The peak that counts as having reached ``max_atm``."""
    return max_atm * KPA_PER_ATM * (1 - MAX_BAND)


def first_failure(
    trace: Trace, inflations: Sequence[Inflation], max_atm: float | None = None
) -> Failure | None:
    """The first inflation that failed, in time order."""
    for f in sorted(inflations, key=lambda f: f.start_ns):
        if (got := failure_of(trace, f, max_atm)) is not None:
            return got
    return None


def after_burst(inflations: Sequence[Inflation], failed: Failure) -> Inflation | None:
    """An inflation that rose again after ``failed`` burst: another balloon."""
    if failed.mode != "burst":
        return None  # a leaking balloon may be tried again; it leaks again
    end = failed.inflation.end_ns
    again = AGAIN * failed.inflation.peak_kpa
    return next(
        (f for f in inflations if f.start_ns >= end and (f.burst or f.peak_kpa >= again)), None
    )
