"""The steps of a stepped inflation and the values at each MARK: a compliance test's result.

A compliance test raises the pressure in steps (1 atm, 2 atm, ... up to the rated burst
pressure), holds each while the balloon settles and the operator marks it, and the
result is the pressure and volume at each step. Here a **step** is a stretch of at least
``STEP_MIN_S`` over which the pressure stays within a band of the stretch's own mean:
``STEP_TOLERANCE_ATM`` plus four times the trace's noise (estimated from it, so a hold
read at 2 kHz with 0.02 atm of noise is one step, not a dozen), a stretch ending only
when ``STEP_OUT_SAMPLES`` samples in a row leave the band (one noisy sample does not
split a hold). A ramp leaves the band within a fraction of a second. A step's pressure
is the stretch's mean, its volume the mean of its last ``SETTLED_S`` (the balloon
settled), its nominal pressure the measured one rounded to ``NOMINAL_ATM``. A **mark**
is the operator's MARK with the pressure and volume of the last sample at or before it.
A step's **diameter** is the mean of the balloon's diameter readings over its hold
(``diameter_over``), as the lot report's.

Pure: the trace's columns in, rows out.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple

from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

STEP_TOLERANCE_ATM = 0.05
NOISE_BANDS = 4.0
STEP_OUT_SAMPLES = 3
STEP_MIN_S = 0.5
EDGE_ATM = 0.01
"""A step begins and ends at its first and last sample within this (and twice the
noise) of its mean: not where a ramp entered its wider band."""
SETTLED_S = 0.2
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
    if hi - lo < 2:
        return []
    noise = noise_kpa(p[lo:hi])
    tolerance = STEP_TOLERANCE_ATM * KPA_PER_ATM + NOISE_BANDS * noise
    edge = EDGE_ATM * KPA_PER_ATM + 2 * noise
    out: list[Step] = []
    a = lo
    while a < hi:
        total, count, last, out_run = p[a], 1, a, 0
        i = a + 1
        while i < hi and out_run < STEP_OUT_SAMPLES:
            if abs(p[i] - total / count) <= tolerance:
                total, count, last, out_run = total + p[i], count + 1, i, 0
            else:
                out_run += 1
            i += 1
        first, mean = a, total / count
        while first < last and abs(p[first] - mean) > edge:  # the ramp's end, into the band
            first += 1
        while last > first and abs(p[last] - mean) > edge:  # the next ramp's start
            last -= 1
        if t[last] - t[first] >= STEP_MIN_S * 1e9:
            mean = sum(p[first : last + 1]) / (last + 1 - first)
            nominal = round(mean / KPA_PER_ATM / NOMINAL_ATM) * NOMINAL_ATM
            out.append(Step(t[first], t[last], mean, _settled(t, v, first, last), nominal))
            a = last + 1
        else:
            a = max(a + 1, i - out_run)  # again from the first sample out of the band
    return out


def diameter_over(
    readings: Sequence[tuple[int, float]], start_ns: int, end_ns: int
) -> float | None:
    """The mean of the (time, mm) ``readings``, in time order, from one time to another
    (a step's hold, both ends in); None: none read then."""
    times = [t for t, _ in readings]
    lo, hi = bisect.bisect_left(times, start_ns), bisect.bisect_right(times, end_ns)
    got = [d for _, d in readings[lo:hi]]
    return statistics.fmean(got) if got else None


def noise_kpa(p: Sequence[float]) -> float:
    """The trace's noise (one sigma), from the median second difference between samples:
    a ramp at any rate has none (a first difference would take a 10 Hz ramp's 0.1 atm
    steps for noise), only its corners do, a few samples of a run."""
    d2 = sorted(abs(c - 2 * b + a) for a, b, c in zip(p, p[1:], p[2:], strict=False))
    if not d2:
        return 0.0
    # For Gaussian noise, a second difference is N(0, 6 sigma^2): its |median| 0.6745 of that.
    return d2[len(d2) // 2] / (0.6745 * math.sqrt(6))


def _settled(t: list[int], v: list[float | None], first: int, last: int) -> float | None:
    """The step's volume: the mean over its last ``SETTLED_S`` (its last reading if none)."""
    since = t[last] - int(SETTLED_S * 1e9)
    got = [x for k in range(last, first - 1, -1) if t[k] >= since and (x := v[k]) is not None]
    return sum(got) / len(got) if got else v[last]


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
