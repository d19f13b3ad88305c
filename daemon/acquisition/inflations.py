"""Inflations found in a pressure trace: where each starts, peaks, holds, deflates or bursts.

One detector serves both the daemon (a ``pv_inflation`` point per completed
inflation, live) and ``pvlog report`` (after the fact, from InfluxDB or a
recording), so the two always agree on the same samples. It is fed one sample at a
time and keeps a handful of numbers per inflation rather than the trace, so a
minute-long hold at 2 kHz costs it no more memory than a one-second one.

The definitions, all on gauge pressure:

- An inflation **starts** at the last sample at or below ``baseline`` before the
  pressure rises above ``threshold``, and **ends** at the first sample back at or
  below ``baseline``. The gap between the two levels is the hysteresis that keeps
  sensor noise near zero from starting inflations.
- **Peak**: the highest pressure in between; the volume at peak is read at that
  sample.
- The **plateau** is every sample within ``max(0.1 atm, 2 % of peak)`` of the peak:
  time to peak runs from the start to the first sample in it, the deflation from the
  last to the end. The **hold** is the time on it once the pressure stopped climbing:
  the climb goes on while the highest pressure so far keeps rising, by at least
  ``RISE_STEP`` within ``RISE_GAP_S`` (or three sample spacings, if longer); so the
  ramp's last stretch through the band is not counted as held, and a burst that
  broke at the top of its ramp held for 0 s (under ``HOLD_MIN_S`` is no hold).
- **Burst**: the pressure collapses from at least 80 % of peak to at most 20 % of
  it within 0.5 s, while the delivered volume does not fall back (at the end, at
  least 90 % of the volume at peak). A quick release is as fast, but the fluid goes
  back into the syringe; after a rupture it leaves through the balloon wall. With
  no volume channel, only a collapse within 0.15 s counts.
- **Cycle**: the inflation's number since its data (a session) began; in a fatigue run,
  the cycle count.
- **Cut**: data that begins above the baseline (the session, the daemon or a file
  started with the balloon up) has an inflation whose start it never saw
  (``cut_start``): its time to peak is unknown, and so is its hold if the data
  begins on the plateau. Data that ends before the pressure is back at the baseline
  has one whose end it never saw (``finish``, ``cut_end``): time to peak, hold and
  deflation are unknown, and its peak is the highest so far. Unknown is ``None``,
  never a number that looks measured.
- **Stretches**: a daemon's detector follows each session of its run as data of its
  own (``switch``): what a session began in the middle of is ``cut_start`` in it, and
  each session counts its own cycles, as the report of its samples alone does.
- **Gap**: samples further apart than the device's own spacing allows (more than
  ``GAP_SPACINGS`` times its mean spacing so far, and at least ``GAP_MIN_S``: a port
  lost, a stall, a daemon stopped and started) are data that ended and data that
  began: what was under way is cut there (``cut_end``), and what is under way after
  is ``cut_start``. Nothing is measured across a time nobody was recording.

Sans-IO: times are the caller's nanoseconds, nothing here reads a clock.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import NamedTuple

from drivers.units import KPA_PER_ATM

THRESHOLD_ATM = 1.0
BASELINE_ATM = 0.3
PLATEAU_FRACTION = 0.02
PLATEAU_MIN_ATM = 0.1
BURST_HIGH = 0.8
BURST_LOW = 0.2
BURST_FALL_S = 0.5
BURST_FALL_NO_VOLUME_S = 0.15
BURST_VOLUME_KEPT = 0.9
GAP_MIN_S = 0.5
"""No gap is shorter: a device stamped with its receive time (no clock of its own) shows
its reader's pauses, and a loaded PC can pause it for a few hundred ms. A lost second
of a 200 Hz stream (a damaged chunk of its recording) is a gap."""
GAP_MIN_NS = int(GAP_MIN_S * 1e9)
GAP_SPACINGS = 10
"""A gap is longer than this many of the device's mean sample spacings (a device polled
every 5 s is not in a gap between two polls)."""
RISE_GAP_S = 0.1
"""A pause this long in the climb of the highest pressure so far ends the climb: noise
on a hold lifts that maximum only now and then, a ramp lifts it at every sample."""
HOLD_MIN_S = 0.1
"""Less time than this on the plateau is no hold (0 s): the first ms of a burst's
collapse, still within 2 % of its peak, are not one."""
RISE_STEP_KPA = 0.005 * KPA_PER_ATM
"""Resolution of the record of the rise (time to peak is exact to one step of
pressure, 5 ms on a 1 atm/s ramp); it keeps that record to a few thousand entries."""


class Inflation(NamedTuple):
    """One completed inflation; pressures in kPa as stored, times in ns and seconds."""

    cycle: int
    start_ns: int
    end_ns: int
    peak_kpa: float
    peak_ns: int
    time_to_peak_s: float | None
    hold_s: float | None
    volume_at_peak_ml: float | None
    deflation_s: float | None
    burst: bool
    burst_ns: int | None
    """When the collapse began (the last sample at 80 % of peak), for a burst."""
    cut_start: bool = False
    """The data began during it: ``start_ns`` is the first sample, not its start."""
    cut_end: bool = False
    """The data ended during it: ``end_ns`` is the last sample, not its end."""

    @property
    def cut(self) -> bool:
        return self.cut_start or self.cut_end

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class _Open:
    """What is known so far of the inflation under way."""

    __slots__ = (
        "collapse_s",
        "cut_start",
        "last_high_ns",
        "last_in_band_ns",
        "peak",
        "peak_ns",
        "peak_v",
        "rises",
        "start_ns",
    )

    def __init__(self, start_ns: int, p: float, t: int, v: float | None, *, cut: bool) -> None:
        self.cut_start = cut
        self.start_ns = start_ns
        self.peak = p
        self.peak_ns = t
        self.peak_v = v
        self.rises: list[tuple[float, int]] = [(p, t)]
        self.last_in_band_ns = t
        self.last_high_ns = t
        self.collapse_s: float | None = None


class InflationDetector:
    """Feed samples in time order with ``add``; it returns each inflation as it ends."""

    def __init__(
        self, *, threshold_atm: float = THRESHOLD_ATM, baseline_atm: float = BASELINE_ATM
    ) -> None:
        if not baseline_atm < threshold_atm:
            raise ValueError("the baseline must be below the threshold")
        self.threshold_kpa = threshold_atm * KPA_PER_ATM
        self.baseline_kpa = baseline_atm * KPA_PER_ATM
        self.cycles = 0
        self._last_low_ns: int | None = None
        self._open: _Open | None = None
        self._prev_ns: int | None = None
        """The last sample's time: the gap rule's reference."""
        self._span_ns = 0
        self._intervals = 0
        """The spacings seen so far that were no gap: their sum and count."""
        self._stretch = ""
        self._set_aside: dict[str, tuple[int, int | None, int | None, int, int]] = {}
        """Each other stretch's cycles, last time at the baseline, last sample, spacings."""

    @property
    def under_way(self) -> tuple[int, float] | None:
        """The inflation under way now: its start and its peak so far (kPa)."""
        cur = self._open
        return None if cur is None else (cur.start_ns, cur.peak)

    @property
    def in_progress_since(self) -> int | None:
        """The start of an inflation that has not ended yet (end of data mid-inflation)."""
        return None if self._open is None else self._open.start_ns

    def switch(self, stretch: str) -> Inflation | None:
        """Go on with the data of ``stretch`` (a session), where it was left or afresh,
        as a report of that stretch's samples alone would; the inflation under way in
        the one left is cut at its last sample (returned)."""
        if stretch == self._stretch:
            return None
        cut = None if self._prev_ns is None else self.finish(self._prev_ns)
        if self._prev_ns is not None:
            self._set_aside[self._stretch] = (self.cycles, self._last_low_ns, self._prev_ns,
                                              self._span_ns, self._intervals)  # fmt: skip
        self._stretch = stretch
        (self.cycles, self._last_low_ns, self._prev_ns, self._span_ns,
         self._intervals) = self._set_aside.pop(stretch, (0, None, None, 0, 0))  # fmt: skip
        return cut

    def take_idle(self, times_ns: Sequence[int], pressures_kpa: Sequence[float]) -> bool:
        """Take these samples (in time order, no NaN) if they start no inflation and none
        is open, and say whether it did; otherwise leave them to ``add``.

        Between inflations (most of a bench's time) a sample only moves the last time
        at the baseline; so a chunk under the threshold throughout is taken in one
        ``max`` and a scan back from its end, not a call per sample.
        """
        if self._open is not None or not pressures_kpa or max(pressures_kpa) > self.threshold_kpa:
            return False
        # No spacing of GAP_MIN_S or less is a gap: within the chunk (if it spans more,
        # its widest spacing says), or before it (only its first can be one).
        if times_ns[-1] - times_ns[0] > GAP_MIN_NS and (
            max(map(operator.sub, times_ns[1:], times_ns[:-1])) > GAP_MIN_NS
        ):
            return False
        if self._gap(times_ns[0], self._prev_ns):
            return False
        self._spaced(times_ns[0], times_ns[-1], len(times_ns))
        baseline = self.baseline_kpa
        for i in range(len(pressures_kpa) - 1, -1, -1):
            if pressures_kpa[i] <= baseline:
                self._last_low_ns = times_ns[i]
                break
        return True

    def _gap(self, time_ns: int, prev: int | None) -> bool:
        """Whether the data broke off between ``prev`` and ``time_ns``."""
        if prev is None or not self._intervals:  # the first spacing is the device's own
            return False
        return time_ns - prev > max(GAP_MIN_NS, GAP_SPACINGS * self._span_ns / self._intervals)

    def _spaced(self, first_ns: int, last_ns: int, samples: int) -> None:
        """``samples`` more, from ``first_ns`` to ``last_ns``, none after a gap: the same
        sums whether they come one by one or as a chunk."""
        if self._prev_ns is None:
            self._span_ns += last_ns - first_ns
            self._intervals += samples - 1
        else:
            self._span_ns += last_ns - self._prev_ns
            self._intervals += samples
        self._prev_ns = last_ns

    def add(self, time_ns: int, pressure_kpa: float, volume_ml: float | None) -> Inflation | None:
        prev = self._prev_ns
        self._prev_ns = time_ns
        if prev is None:
            return self._add(time_ns, pressure_kpa, volume_ml)
        spacing = time_ns - prev
        if spacing > GAP_MIN_NS and self._gap(time_ns, prev):
            cut = self.finish(prev)
            self._last_low_ns = None  # what comes after the gap did not start here
            done = self._add(time_ns, pressure_kpa, volume_ml)  # (none: nothing is open)
            return cut if cut is not None else done
        self._span_ns += spacing  # (inlined ``_spaced``: this runs for every sample)
        self._intervals += 1
        return self._add(time_ns, pressure_kpa, volume_ml)

    def _add(self, time_ns: int, pressure_kpa: float, volume_ml: float | None) -> Inflation | None:
        cur = self._open
        if cur is None:
            if pressure_kpa <= self.baseline_kpa:
                self._last_low_ns = time_ns
            elif pressure_kpa > self.threshold_kpa:
                low = self._last_low_ns
                start = time_ns if low is None else low
                self._open = _Open(start, pressure_kpa, time_ns, volume_ml, cut=low is None)
            return None
        if pressure_kpa <= self.baseline_kpa:
            self._open = None
            self._last_low_ns = time_ns
            return self._close(cur, time_ns, volume_ml)
        if pressure_kpa > cur.peak:
            cur.peak, cur.peak_ns, cur.peak_v = pressure_kpa, time_ns, volume_ml
            if pressure_kpa >= cur.rises[-1][0] + RISE_STEP_KPA:
                cur.rises.append((pressure_kpa, time_ns))
        peak = cur.peak
        if pressure_kpa >= peak - max(PLATEAU_MIN_ATM * KPA_PER_ATM, PLATEAU_FRACTION * peak):
            cur.last_in_band_ns = time_ns
        if pressure_kpa >= BURST_HIGH * peak:
            cur.last_high_ns = time_ns
            cur.collapse_s = None
        elif pressure_kpa <= BURST_LOW * peak and cur.collapse_s is None:
            cur.collapse_s = (time_ns - cur.last_high_ns) / 1e9
        return None

    def finish(self, end_ns: int) -> Inflation | None:
        """The end of the data: the inflation still under way, if any, cut there (its
        peak so far; time to peak, hold and deflation unknown). The detector is then
        as if the pressure were back at the baseline."""
        cur = self._open
        if cur is None:
            return None
        self._open = None
        self._last_low_ns = None  # what comes next, if anything, did not start here
        self.cycles += 1
        return Inflation(
            cycle=self.cycles,
            start_ns=cur.start_ns,
            end_ns=end_ns,
            peak_kpa=cur.peak,
            peak_ns=cur.peak_ns,
            time_to_peak_s=None,
            hold_s=None,
            volume_at_peak_ml=cur.peak_v,
            deflation_s=None,
            burst=False,
            burst_ns=None,
            cut_start=cur.cut_start,
            cut_end=True,
        )

    def _close(self, cur: _Open, end_ns: int, end_volume: float | None) -> Inflation:
        self.cycles += 1
        peak = cur.peak
        if cur.collapse_s is None:  # fell straight through 20 % to the baseline
            cur.collapse_s = (end_ns - cur.last_high_ns) / 1e9
        band_low = peak - max(PLATEAU_MIN_ATM * KPA_PER_ATM, PLATEAU_FRACTION * peak)
        # The first recorded rise into the plateau; the peak sample itself if none is.
        reached_ns = next((t for p, t in cur.rises if p >= band_low), cur.peak_ns)
        climbed_ns = self._climbed(cur.rises, reached_ns)
        if cur.peak_v is None or end_volume is None:
            burst = cur.collapse_s <= BURST_FALL_NO_VOLUME_S
        else:
            kept = end_volume >= BURST_VOLUME_KEPT * cur.peak_v
            burst = cur.collapse_s <= BURST_FALL_S and kept
        # Cut at the start, the rise was not seen, so neither was the time to peak;
        # nor the hold's beginning if the first sample was on the plateau already; nor
        # the peak itself if the first sample was the highest (it may have been before).
        first_p, first_ns = cur.rises[0]
        on_plateau_at_start = cur.cut_start and first_p >= band_low
        peak_unseen = cur.cut_start and cur.peak_ns == first_ns
        return Inflation(
            cycle=self.cycles,
            start_ns=cur.start_ns,
            end_ns=end_ns,
            peak_kpa=peak,
            peak_ns=cur.peak_ns,
            time_to_peak_s=None if cur.cut_start else (reached_ns - cur.start_ns) / 1e9,
            hold_s=None if on_plateau_at_start else _held(cur.last_in_band_ns - climbed_ns),
            volume_at_peak_ml=cur.peak_v,
            deflation_s=None if peak_unseen else (end_ns - cur.last_in_band_ns) / 1e9,
            burst=burst,
            burst_ns=cur.last_high_ns if burst else None,
            cut_start=cur.cut_start,
        )

    def _climbed(self, rises: list[tuple[float, int]], reached_ns: int) -> int:
        """When the climb through the plateau's band ended (see the module's hold)."""
        spacing = self._span_ns / self._intervals if self._intervals else 0.0
        gap = max(RISE_GAP_S * 1e9, 3 * spacing)
        climbed = reached_ns
        for _, t in rises:
            if t <= reached_ns:
                continue
            if t - climbed > gap:
                break
            climbed = t
        return climbed


def _held(ns: int) -> float:
    return ns / 1e9 if ns >= HOLD_MIN_S * 1e9 else 0.0


def inflation_fields(inflation: Inflation) -> dict[str, float | int | bool | None]:
    """The fields of a ``pv_inflation`` point (its time is the inflation's start)."""
    return {
        "cycle": inflation.cycle,
        "peak_pressure_kpa": inflation.peak_kpa,
        "time_to_peak_s": inflation.time_to_peak_s,
        "hold_s": inflation.hold_s,
        "volume_at_peak_ml": inflation.volume_at_peak_ml,
        "deflation_s": inflation.deflation_s,
        "duration_s": inflation.duration_s,
        "burst": inflation.burst,
        "cut_start": inflation.cut_start,
        "cut_end": inflation.cut_end,
    }
