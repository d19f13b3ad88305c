"""How a balloon failed, read from its trace: a burst, a leak, or not at all.

A lot passes on its rated burst pressure only if no balloon failed at or below it, so
a balloon that could not hold pressure must count as much as one that ruptured. The
detector (``daemon.acquisition.inflations``) finds bursts: a collapse from 80 % to 20 %
of the peak within 0.5 s with the delivered volume kept. A **leak** is the slow kind of
the same failure: the pressure falls to ``LEAK_FALL`` of the highest so far or lower,
not as a burst, while the fluid stays out of the syringe. Where it first gets there,
the delivered volume (a median over a few samples, ``VOLUME_WINDOW``: one noisy
reading decides nothing) is compared with the balloon's own on the way up at that
same pressure: a release gives the fluid back, and the volume falls back onto the curve
it rose on; a leak loses it through the balloon, and the volume stays nearer the
highest's (``LEAK_KEPT`` of the way, or more). It is looked for from the start of the
inflation, so a balloon that bled away, was pushed on and then burst failed where it
first leaked; what happens after (a syringe withdrawn) changes nothing. After a fall
judged a release, the balloon is judged afresh once it is inflated again.

Where the volume cannot tell (no volume channel, or a balloon so stiff there that it
gives back almost nothing, less than ``VOLUME_SPAN`` of its volume), time does: a fall
from 80 % to 20 % of the peak taking ``LEAK_SLOW_S`` or longer is a leak, at the
test's maximum too (a release takes a fraction of a second; the cautious reading fails
the lot rather than passing it).

A burst ends a balloon: ``after_burst`` finds an inflation after it that failed too,
or rose again to ``AGAIN`` of the burst pressure or more (a ruptured balloon holds
none), which is another balloon recorded under the same name, and the lot refuses it.

A burst specimen's **outcome**, in this order:

- ``excluded``: its session has an ``exclude=<reason>`` tag: the operator's word,
  with any failure its data holds shown beside it;
- ``burst`` or ``leak``: its first failure, at the burst's peak or the highest
  pressure before the leak;
- ``no failure``: it reached the test's maximum (``max_atm``, within ``MAX_BAND``)
  without failing;
- ``incomplete``: none of these: its data (or the operator) stopped first.

Pure: a trace and its inflations in, outcomes out.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from daemon.acquisition.inflations import BURST_HIGH, BURST_LOW, Inflation
from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

LEAK_FALL = 0.8
"""A leak takes the pressure down to this fraction of the highest so far or lower."""
LEAK_KEPT = 0.5
"""Of the volume between the rising curve and the peak, a leak keeps at least this."""
VOLUME_SPAN = 0.02
"""Below this share of the peak's volume given back by a release, volume cannot tell."""
VOLUME_WINDOW = 5
"""Volumes are read as the median of this many samples either side: one noisy reading
never decides between a leak and a release."""
REINFLATED = 0.25
REINFLATED_KPA = 0.5 * KPA_PER_ATM
"""After a release, a rise by this share of the low (and this much) is a new inflation
of the balloon, judged afresh."""
LEAK_SLOW_S = 2.0
"""Where volume cannot tell: a fall from 80 % to 20 % of the peak at least this slow."""
MAX_BAND = 0.02
"""A peak within this fraction below ``max_atm`` reached it."""
AGAIN = 0.25
"""After a burst, an inflation to this fraction of the burst pressure (or another burst
or leak) is another balloon: a ruptured one holds no pressure."""

OUTCOMES = ("burst", "leak", "no failure", "incomplete", "excluded")
FAILURES = ("burst", "leak")


class Failure(NamedTuple):
    mode: str
    """``burst`` or ``leak``."""
    inflation: Inflation
    pressure_kpa: float
    """The pressure it failed at: the burst's peak, or the highest before the leak."""

    @property
    def pressure_atm(self) -> float:
        return self.pressure_kpa / KPA_PER_ATM


def failure_of(trace: Trace, f: Inflation) -> Failure | None:
    """How inflation ``f`` of ``trace`` failed (None: it did not). A leak is looked for
    from the start, against the highest pressure so far: one that bled away, was pushed
    on and then burst failed where it first leaked."""
    t, p = trace.time_ns, trace.pressure_kpa
    start = bisect.bisect_left(t, f.start_ns)
    hi = bisect.bisect_right(t, f.end_ns)
    top = low = start
    released = False
    """A fall judged a release: nothing more until the pressure rises again."""
    for i in range(start, hi):
        if f.burst and t[i] >= f.peak_ns:
            break
        if released:
            if p[i] < p[low]:
                low = i
            elif p[i] > p[low] + max(REINFLATED_KPA, REINFLATED * p[low]):
                released, top = False, i  # inflated again: judged from here
        elif p[i] > p[top]:
            top = i
        elif p[i] <= LEAK_FALL * p[top]:
            if _leaked(trace, f, (start, top, i)):
                return Failure("leak", f, p[top])
            released, low = True, i
    return Failure("burst", f, f.peak_kpa) if f.burst else None


def _leaked(trace: Trace, f: Inflation, where: tuple[int, int, int]) -> bool:
    """Whether the fall from ``top`` to ``at`` (``where``: the inflation's start, its
    highest so far, the fall) kept the fluid out (a leak) rather than gave it back (a
    release); by time where the volume cannot tell."""
    start, top, at = where
    kept = _kept(trace, start, top, at)
    if kept is not None:
        return kept >= LEAK_KEPT
    t, p = trace.time_ns, trace.pressure_kpa
    hi = bisect.bisect_right(t, f.end_ns)
    peak = p[top]
    low = next((i for i in range(at, hi) if p[i] <= BURST_LOW * peak), None)
    if low is None:
        return False  # still up: nothing to time yet
    began = max((i for i in range(top, at + 1) if p[i] >= BURST_HIGH * peak), default=top)
    return (t[low] - t[began]) / 1e9 >= LEAK_SLOW_S


def _volume(v: Sequence[float | None], i: int, lo: int, hi: int) -> float | None:
    got = [x for x in v[max(lo, i - VOLUME_WINDOW) : min(hi, i + VOLUME_WINDOW + 1)]
           if x is not None]  # fmt: skip
    return statistics.median(got) if got else None


def _kept(trace: Trace, start: int, top: int, at: int) -> float | None:
    """How much of what a release would give back is still out at ``at``: 0 on the
    rising curve, 1 at the volume at ``top`` (None: the volume cannot tell)."""
    p, v = trace.pressure_kpa, trace.volume_ml
    end = len(p)
    rising = next((k for k in range(start, top + 1) if p[k] >= p[at]), None)
    if rising is None:
        return None
    peak_ml, now = _volume(v, top, start, end), _volume(v, at, start, end)
    before = _volume(v, rising, start, top + 1)
    if peak_ml is None or now is None or before is None or peak_ml <= 0:
        return None
    span = peak_ml - before
    if span <= VOLUME_SPAN * peak_ml:
        return None
    return (now - before) / span


def reached_kpa(max_atm: float) -> float:
    """The peak that counts as having reached ``max_atm``."""
    return max_atm * KPA_PER_ATM * (1 - MAX_BAND)


def first_failure(trace: Trace, inflations: Sequence[Inflation]) -> Failure | None:
    """The first inflation that failed, in time order."""
    for f in sorted(inflations, key=lambda f: f.start_ns):
        if (got := failure_of(trace, f)) is not None:
            return got
    return None


def after_burst(trace: Trace, inflations: Sequence[Inflation], failed: Failure) -> Inflation | None:
    """An inflation that rose again after ``failed`` burst: another balloon."""
    if failed.mode != "burst":
        return None  # a leaking balloon may be tried again; it leaks again
    end = failed.inflation.end_ns
    again = AGAIN * failed.pressure_kpa
    return next((f for f in inflations if f.start_ns >= end
                 and (f.peak_kpa >= again or failure_of(trace, f) is not None)), None)  # fmt: skip
