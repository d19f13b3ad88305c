"""Device clock to host time, sans-IO: the device's spacing, anchored to receive time.

The device's 32-bit microsecond clock is unwrapped to 64 bits. A sample's host
time is its device time plus an offset, the smallest ``rx - device`` seen: the
read that arrived soonest after its sample was taken has the least delivery
latency in it. The offset is re-estimated every ``WINDOW_NS`` so it follows drift
both ways, and reset when the device clock jumps (reboot). Output is strictly
increasing. The precise drift fit replaces this in a later step.
"""

from __future__ import annotations

from typing import Final

WRAP: Final = 1 << 32
WINDOW_NS: Final = 5_000_000_000
JUMP_NS: Final = 1_000_000_000
"""A sample further than this from where the current anchor puts it means the clock jumped."""


class DeviceClock:
    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._epoch = 0  # unwrapped = raw + epoch
        self._offset = 0
        self._window_min = 0
        self._window_start = 0
        self._last_out = 0
        self.resets = 0

    def reset(self) -> None:
        """Forget the anchor (the device said it rebooted)."""
        if self._last_raw is not None:
            self.resets += 1
        self._last_raw = None

    def to_host_ns(self, device_us: int, rx_time_ns: int) -> int:
        last = self._last_raw
        if last is not None:
            step = (device_us - last) % WRAP
            if step >= WRAP // 2:  # went backwards: a reboot, not a wrap
                last = None
            elif device_us < last:
                self._epoch += WRAP
        device_ns = (device_us + self._epoch) * 1000
        candidate = rx_time_ns - device_ns
        if last is None or abs(candidate - self._offset) > JUMP_NS:
            if self._last_raw is not None:
                self.resets += 1  # a reboot or a jump of the device clock
            self._offset = self._window_min = candidate
            self._window_start = rx_time_ns
        else:
            # Comparisons, not min(): this runs once per sample.
            if candidate < self._offset:  # noqa: PLR1730
                self._offset = candidate
            if candidate < self._window_min:  # noqa: PLR1730
                self._window_min = candidate
            if rx_time_ns - self._window_start >= WINDOW_NS:
                self._offset = self._window_min
                self._window_min = candidate
                self._window_start = rx_time_ns
        self._last_raw = device_us
        out = device_ns + self._offset
        if out <= self._last_out:
            out = self._last_out + 1
        self._last_out = out
        return out
