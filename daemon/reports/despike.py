"""A lot's traces without spikes: no balloon sees a pressure for a sample or three.

A sensor glitch, a reading or a few far above (or below) both neighbours, would set an
inflation's peak, and with it a burst or leak pressure, a balloon never reached (18 atm
in the ramp of one that burst at 6). A lot's verdict is made on pressures the balloon
held: up to ``SPIKE_RUN`` samples in a row, each more than ``SPIKE_ATM`` (and
``SPIKE_SHARE`` of itself) beyond both samples around the run on the same side, are
left out, and counted on the document. The top of a
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
SPIKE_RUN = 3
"""The longest run of samples taken for a glitch: a few ms at any rate pvlog reads."""


def spikes(p: list[float]) -> list[int]:
    """The indices of spikes in ``p``: runs of at most ``SPIKE_RUN`` samples all beyond
    both samples flanking the run, on the same side."""
    floor = SPIKE_ATM * KPA_PER_ATM
    out: set[int] = set()
    for i in range(1, len(p) - 1):
        for n in range(1, SPIKE_RUN + 1):
            if i + n >= len(p):
                break
            a, b, run = p[i - 1], p[i + n], p[i : i + n]
            if all(x - max(a, b) > max(floor, SPIKE_SHARE * abs(x)) for x in run) or all(
                min(a, b) - x > max(floor, SPIKE_SHARE * abs(x)) for x in run
            ):
                out.update(range(i, i + n))
                break
    return sorted(out)


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
