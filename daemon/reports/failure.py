"""How a balloon failed, read from its trace: a burst, a leak, or not at all.

A lot passes on its rated burst pressure only if no balloon failed at or below it, so
a balloon that could not hold pressure must count as much as one that ruptured. The
detector (``daemon.acquisition.inflations``) finds bursts: a collapse from 80 % to 20 %
of the peak within 0.5 s with the delivered volume kept. A **leak** is the slow kind of
the same failure: after the peak the pressure falls to at most ``LEAK_FALL`` of it,
not as a burst, and where it is lowest the delivered volume is still at least
``BURST_VOLUME_KEPT`` of the volume at the peak (the fluid left through the balloon,
not back into the syringe). An operator's release gives the fluid back and is no
failure. Without a volume channel a release and a leak look alike: a fall from 80 %
to 20 % of the peak (or to its lowest) taking ``LEAK_SLOW_S`` or longer is taken for
a leak (the cautious reading: it fails the lot rather than passing it), unless the
peak had reached the test's maximum; a release takes a fraction of a second.

A burst specimen's **outcome** (``outcome``), in this order:

- ``excluded``: its session has an ``exclude=<reason>`` tag: the operator's word;
- ``burst`` or ``leak``: its first inflation that failed, at that inflation's peak;
- ``no failure``: it reached the test's maximum (``max_atm``, within ``MAX_BAND``)
  without failing;
- ``incomplete``: none of these: its data (or the operator) stopped first.

Pure: a trace and its inflations in, outcomes out.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

from daemon.acquisition.inflations import BURST_HIGH, BURST_LOW, BURST_VOLUME_KEPT, Inflation
from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

LEAK_FALL = 0.5
"""A leak takes the pressure down to at most this fraction of the peak."""
LEAK_SLOW_S = 1.0
"""Without volume: a fall from 80 % to 20 % of the peak at least this slow."""
MAX_BAND = 0.02
"""A peak within this fraction below ``max_atm`` reached it."""

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
    t, p, v = trace.time_ns, trace.pressure_kpa, trace.volume_ml
    lo, hi = bisect.bisect_left(t, f.peak_ns), bisect.bisect_right(t, f.end_ns)
    if hi <= lo:
        return None
    low = min(range(lo, hi), key=p.__getitem__)  # where the fall ended (or the data did)
    if p[low] > LEAK_FALL * f.peak_kpa:
        return None  # it never fell that far: held, or the data ended at the top
    kept = v[low]
    if f.volume_at_peak_ml is not None and f.volume_at_peak_ml > 0 and kept is not None:
        leaked = kept >= BURST_VOLUME_KEPT * f.volume_at_peak_ml
        return Failure("leak", f) if leaked else None
    if max_atm is not None and f.peak_kpa >= reached_kpa(max_atm):
        return None  # at the maximum: the operator's release ended the test
    down = next((i for i in range(lo, low + 1) if p[i] <= BURST_LOW * f.peak_kpa), low)
    began = max((i for i in range(lo, down + 1) if p[i] >= BURST_HIGH * f.peak_kpa), default=lo)
    return Failure("leak", f) if (t[down] - t[began]) / 1e9 >= LEAK_SLOW_S else None


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
