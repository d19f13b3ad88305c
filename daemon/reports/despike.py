"""A lot's traces without single-sample spikes: no balloon sees a pressure for one sample.

A sensor glitch, one reading far above (or below) both its neighbours, would set an
inflation's peak, and with it a burst or leak pressure, a balloon never reached (18 atm
in the ramp of one that burst at 6). A lot's verdict is made on pressures the balloon
held: a sample more than ``SPIKE_ATM`` (and ``SPIKE_SHARE`` of itself) beyond both
neighbours on the same side is left out, and counted on the document. The top of a
ramp or the first sample of a collapse is beyond one neighbour only, so no real peak
is touched.

Pure: a trace in, a trace and a count out.
"""

from __future__ import annotations

import dataclasses

from daemon.reports.analysis import Trace
from drivers.units import KPA_PER_ATM

SPIKE_ATM = 0.5
SPIKE_SHARE = 0.1


def spikes(p: list[float]) -> list[int]:
    """The indices of single-sample spikes in ``p``."""
    out = []
    floor = SPIKE_ATM * KPA_PER_ATM
    for i in range(1, len(p) - 1):
        a, x, b = p[i - 1], p[i], p[i + 1]
        far = max(floor, SPIKE_SHARE * abs(x))
        if x - max(a, b) > far or min(a, b) - x > far:
            out.append(i)
    return out


def despiked(trace: Trace) -> tuple[Trace, int]:
    """``trace`` without its spikes (the same object when it has none), and how many."""
    bad = set(spikes(trace.pressure_kpa))
    if not bad:
        return trace, 0
    keep = [i for i in range(len(trace.time_ns)) if i not in bad]
    clean = dataclasses.replace(
        trace,
        time_ns=[trace.time_ns[i] for i in keep],
        pressure_kpa=[trace.pressure_kpa[i] for i in keep],
        volume_ml=[trace.volume_ml[i] for i in keep],
    )
    return clean, len(bad)
