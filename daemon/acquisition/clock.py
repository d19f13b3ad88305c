"""Device clock to host time, sans-IO: the device's spacing, fitted to receive time.

Every driver with a device clock (PVS ``t_us``, LBX ``t0_us``) goes through
``DeviceClock.to_host_ns(device_us, rx_time_ns)``: no clock is read here, time is
what the caller says it is, so hours of synthetic streams test in seconds.

The model: ``rx = device_time * (1 + drift) + offset + delay``, where the delay is
the USB-serial delivery latency (reads arrive in bursts every 1-16 ms) and is
never negative. So ``rx - device_time`` is an upper bound on the offset, and the
samples delivered soonest trace its lower envelope. Per second of receive time
the lowest point is kept; over the last minute of such points a Theil-Sen line
(the median of pairwise slopes, robust to seconds in which every read was late)
gives the drift, and the lowest point under that slope gives the offset. A sample
that arrives earlier than the line allows proves the line too high, and the
offset comes down at once: no sample is ever stamped after it was received.

The 32-bit microsecond clock is unwrapped using the host time that passed, so
even a silence longer than a wrap (71 minutes) unwraps right. A device time more
than ``JUMP_NS`` away from where the fit puts it (a reboot, a clock reset) starts
a new fit. Output is strictly increasing.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import Final

WRAP: Final = 1 << 32
HALF_WRAP: Final = WRAP // 2
HALF_WRAP_NS: Final = HALF_WRAP * 1000
BIN_NS: Final = 1_000_000_000
"""One envelope point per second of receive time."""
WINDOW_BINS: Final = 60
"""The fit looks at the last minute: drift of +-100 ppm moves the offset 6 ms in it."""
MIN_SPAN_NS: Final = 5_000_000_000
"""Drift is fitted once the envelope spans this much device time."""
JUMP_NS: Final = 1_000_000_000
"""A sample further than this from where the fit puts it means the clock jumped."""
MAX_DRIFT: Final = 200e-6
"""Devices drift up to +-100 ppm; a steeper fit is noise, not drift, and is not taken."""


class DeviceClock:
    def __init__(self) -> None:
        self.resets = 0
        self._last_out = 0
        self._start()

    def _start(self) -> None:
        self._last_raw: int | None = None
        self._last_rx = 0
        self._device_ns = 0
        # Offset (host - device) at device time d: offset + slope * (d - ref).
        self._offset = 0
        self._slope = 0.0
        self._ref = 0
        self._bins: deque[tuple[int, int]] = deque(maxlen=WINDOW_BINS)
        self._bin_end = 0
        self._bin_device = 0
        self._bin_low = 0

    @property
    def drift_ppm(self) -> float:
        """The device clock's error as fitted: positive when it runs slow."""
        return self._slope * 1e6

    def reset(self) -> None:
        """Forget the fit (the device said it rebooted)."""
        if self._last_raw is not None:
            self.resets += 1
        self._start()

    def observe(self, device_us: int, rx_time_ns: int) -> None:
        """Learn from a sample before stamping the ones received with it.

        Every sample of a read shares its receive time, so the read's last sample
        bounds the offset tightest; observing it first means the earlier ones are
        stamped with that bound rather than their own looser ones.
        """
        self.event_time_ns(device_us, rx_time_ns)

    def event_time_ns(self, device_us: int, rx_time_ns: int) -> int:
        """Host time of an event the device stamped: fitted, but outside the samples'
        strictly increasing sequence (an event may be sent before the block holding
        the samples it falls between)."""
        last_out = self._last_out
        self._last_out = 0  # nothing to stay ahead of
        try:
            return self.to_host_ns(device_us, rx_time_ns)
        finally:
            self._last_out = last_out

    def to_host_ns(self, device_us: int, rx_time_ns: int) -> int:
        """Host time (ns) at which the sample stamped ``device_us`` was taken.

        Strictly increasing from call to call: a series never gets two points at
        one time (InfluxDB would keep only the last). Learns from the sample on the
        way; this runs once per sample, so the common case is kept to a few lines.
        """
        last = self._last_raw
        self._last_raw = device_us
        if last is None:
            self._device_ns = device_ns = device_us * 1000
            self._last_rx = rx_time_ns
            self._anchor(device_ns, rx_time_ns)
            out = rx_time_ns
        else:
            step = (device_us - last) % WRAP
            if step >= HALF_WRAP:
                step -= WRAP  # backwards: caught as a jump below
            if rx_time_ns - self._last_rx > HALF_WRAP_NS:  # whole wraps may have passed
                step += round(((rx_time_ns - self._last_rx) // 1000 - step) / WRAP) * WRAP
            self._last_rx = rx_time_ns
            self._device_ns = device_ns = self._device_ns + step * 1000
            low = rx_time_ns - device_ns
            fitted = self._offset + int(self._slope * (device_ns - self._ref))
            if not -JUMP_NS <= low - fitted <= JUMP_NS:
                self.resets += 1
                self._anchor(device_ns, rx_time_ns)
                fitted = low
            else:
                if low < self._bin_low:
                    self._bin_low = low
                    self._bin_device = device_ns
                if rx_time_ns >= self._bin_end:
                    self._close_bin(rx_time_ns, device_ns)
                    fitted = self._offset + int(self._slope * (device_ns - self._ref))
                if low < fitted:
                    # Delivered sooner than the fit allows: the fit is too high.
                    self._offset -= fitted - low
                    fitted = low
            out = device_ns + fitted
        if out <= self._last_out:
            out = self._last_out + 1
        self._last_out = out
        return out

    def to_host_times(self, device_us: Sequence[int], rx_time_ns: int) -> list[int]:
        """``to_host_ns`` of each of a block's samples, received together: the same
        times, and the clock left in the same state, as that many calls.

        Evenly spaced samples (a ``range``) between the block's first and last need
        no call each. Once the first is stamped, the fit stays as it is up to the
        last: every sample shares the receive time, so none closes a bin, and
        ``rx - device_time`` only falls along the block, so the last sample bounds
        the fit tightest and is the only one that can lower it or jump. The middle
        is then the fit's line at each device time, if the line says so at the
        middle's ends (no jump; none delivered sooner than the fit allows; still
        increasing after the first). Otherwise, and for anything but a rising
        ``range`` inside the 32-bit clock, the samples are stamped one by one.
        """
        to_host = self.to_host_ns
        n = len(device_us)
        if n < 4 or type(device_us) is not range or device_us.step <= 0 or device_us[-1] >= WRAP:
            return [to_host(t, rx_time_ns) for t in device_us]
        first = to_host(device_us[0], rx_time_ns)
        step_ns = device_us.step * 1000
        d1 = self._device_ns + step_ns  # the middle: device_us[1:-1], in ns
        d2 = d1 + (n - 3) * step_ns
        offset, slope, ref = self._offset, self._slope, self._ref
        low1, low2 = rx_time_ns - d1, rx_time_ns - d2
        fit1 = offset + int(slope * (d1 - ref))
        fit2 = offset + int(slope * (d2 - ref))
        if low1 - fit1 > JUMP_NS or low2 < fit2 or d1 + fit1 <= first:
            return [first] + [to_host(t, rx_time_ns) for t in device_us[1:]]
        middle = [d + offset + int(slope * (d - ref)) for d in range(d1, d2 + 1, step_ns)]
        self._last_raw = device_us[-2]
        self._device_ns = d2
        if low2 < self._bin_low:
            self._bin_low, self._bin_device = low2, d2
        self._last_out = middle[-1]
        return [first, *middle, to_host(device_us[-1], rx_time_ns)]

    def _anchor(self, device_ns: int, rx_time_ns: int) -> None:
        """Start a fit at this sample: offset from it alone, drift unknown."""
        self._bins.clear()
        self._offset = rx_time_ns - device_ns
        self._slope = 0.0
        self._ref = device_ns
        self._bin_end = rx_time_ns + BIN_NS
        self._bin_low = self._offset
        self._bin_device = device_ns

    def _close_bin(self, rx_time_ns: int, device_ns: int) -> None:
        self._bins.append((self._bin_device, self._bin_low))
        self._bin_end = rx_time_ns + BIN_NS
        self._bin_low = rx_time_ns - device_ns
        self._bin_device = device_ns
        self._refit()

    def _refit(self) -> None:
        """The line under every envelope point that hugs them closest.

        Delays only ever add, so the truth lies under all the points: of the lines
        that do, the one nearest them on average is an edge of their lower convex
        hull, the edge spanning their mean device time (the linear-programming
        estimate of clock skew from one-way delays). A second whose reads were all
        late sits above the hull and cannot tilt it, as it would a least-squares
        or median fit.
        """
        points = list(self._bins)
        hull: list[tuple[int, int]] = []
        for p in points:
            while len(hull) >= 2 and _turn(hull[-2], hull[-1], p) <= 0:
                hull.pop()
            hull.append(p)
        ref = points[-1][0]
        if len(hull) >= 2 and hull[-1][0] - hull[0][0] >= MIN_SPAN_NS:
            mean = sum(d for d, _ in points) // len(points)
            (d1, c1), (d2, c2) = next((a, b) for a, b in itertools.pairwise(hull) if b[0] >= mean)
            slope = (c2 - c1) / (d2 - d1)
            if -MAX_DRIFT <= slope <= MAX_DRIFT:
                self._slope = slope
        self._ref = ref
        self._offset = min(c - int(self._slope * (d - ref)) for d, c in points)


def _turn(o: tuple[int, int], a: tuple[int, int], b: tuple[int, int]) -> int:
    """Positive when o -> a -> b turns left (counter-clockwise)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
