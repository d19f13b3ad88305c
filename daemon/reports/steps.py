"""The steps of a stepped inflation and the values at each MARK: a compliance test's result.

A compliance test raises the pressure in steps (1 atm, 2 atm, ... up to the rated burst
pressure), holds each while the balloon settles and the operator marks it, and the
result is the pressure and volume at each step. Here a **step** is a stretch of at least
``STEP_MIN_S`` over which the pressure stays within ``STEP_TOLERANCE_ATM`` of where the
stretch began (a ramp leaves that band within a fraction of a second); its pressure is
the stretch's mean, its volume the last reading (the balloon settled), its nominal
pressure the measured one rounded to ``NOMINAL_ATM``. A **mark** is the operator's MARK
with the pressure and volume of the last sample at or before it.

Pure: the trace's columns in, rows out.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

STEP_TOLERANCE_ATM = 0.05
STEP_MIN_S = 0.5
NOMINAL_ATM = 0.5


class Step(NamedTuple):
    start_ns: int
    end_ns: int
    pressure_kpa: float
    volume_ml: float | None
    nominal_atm: float

    @property
    def held_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class Mark(NamedTuple):
    time_ns: int
    detail: str
    pressure_kpa: float | None
    volume_ml: float | None


def steps(trace: Trace, start_ns: int, end_ns: int) -> list[Step]:
    """The plateaus of ``trace`` between two times (an inflation's start and end)."""
    t, p, v = trace.time_ns, trace.pressure_kpa, trace.volume_ml
    lo, hi = bisect.bisect_left(t, start_ns), bisect.bisect_right(t, end_ns)
    tolerance = STEP_TOLERANCE_ATM * KPA_PER_ATM
    out: list[Step] = []
    a = lo
    for i in range(lo, hi + 1):
        if i < hi and abs(p[i] - p[a]) <= tolerance:
            continue
        last = i - 1
        if last > a and t[last] - t[a] >= STEP_MIN_S * 1e9:
            mean = sum(p[a:i]) / (i - a)
            nominal = round(mean / KPA_PER_ATM / NOMINAL_ATM) * NOMINAL_ATM
            out.append(Step(t[a], t[last], mean, v[last], nominal))
        a = i
    return out


def marks(trace: Trace) -> list[Mark]:
    """Each MARK with the last pressure and volume at or before it."""
    out = []
    for when, detail in sorted(trace.marks):
        i = bisect.bisect_right(trace.time_ns, when) - 1
        if i < 0:
            out.append(Mark(when, detail, None, None))
        else:
            out.append(Mark(when, detail, trace.pressure_kpa[i], trace.volume_ml[i]))
    return out
