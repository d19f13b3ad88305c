"""Clock alignment on long synthetic streams: drift, bursty USB-serial delivery, a reboot.

The issue's bar: after 10 s of settling, aligned time is within 1 ms of the true
sampling time at p99, over two hours, at +-100 ppm, with reads arriving in bursts
every 1-16 ms.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from daemon.acquisition.clock import WRAP, DeviceClock

HOST0 = 1_800_000_000_000_000_000
SETTLE_NS = 10_000_000_000


def stream(
    seconds: float,
    rate_hz: float,
    ppm: float,
    rng: random.Random,
    *,
    t0_us: int = WRAP - 3_000_000,
    reboot_at_s: float | None = None,
) -> Iterator[tuple[int, int, int, bool]]:
    """(device_us, rx_ns, true_ns, after_reboot) per sample, in delivery order.

    The device samples every 1/rate of its own clock (which runs ``ppm`` fast); the
    adapter hands samples over in reads 1-16 ms apart, each 50-400 us late on top,
    as an FTDI latency timer and the host's scheduler do.
    """
    period_ns = 1e9 / rate_hz
    n = int(seconds * rate_hz)
    next_read = HOST0 + rng.uniform(1e6, 16e6)
    pending: list[tuple[int, int, bool]] = []
    rebooted = False
    boot_k = 0
    base_us = t0_us
    for k in range(n):
        true_ns = HOST0 + int(k * period_ns)
        if reboot_at_s is not None and not rebooted and true_ns - HOST0 >= reboot_at_s * 1e9:
            rebooted, boot_k, base_us = True, k, rng.randrange(0, 1_000_000)
        device_us = (base_us + int((k - boot_k) * period_ns / 1000 * (1 + ppm * 1e-6))) % WRAP
        while true_ns >= next_read:
            rx = int(next_read + rng.uniform(50_000, 400_000))
            for dev, t, after in pending:
                yield dev, rx, t, after
            pending.clear()
            next_read += rng.uniform(1e6, 16e6)
        pending.append((device_us, true_ns, rebooted))


def p99(values: list[int]) -> int:
    values = sorted(values)
    return values[int(len(values) * 0.99)]


@pytest.mark.parametrize("ppm", [-100.0, 100.0])
def test_two_hours_within_a_millisecond_at_p99(ppm: float) -> None:
    rng = random.Random(int(ppm * 10))
    clock = DeviceClock()
    errors = []
    last = 0
    for dev, rx, true_ns, _ in stream(2 * 3600, 100, ppm, rng):
        t = clock.to_host_ns(dev, rx)
        assert t > last
        # Never after it was received (but for the 1 ns steps that keep ties apart).
        assert t <= rx + 100, (t, rx)
        last = t
        if true_ns - HOST0 > SETTLE_NS:
            errors.append(abs(t - true_ns))
    assert len(errors) > 700_000
    assert p99(errors) < 1_000_000, p99(errors)
    assert abs(clock.drift_ppm + ppm) < 5 or abs(clock.drift_ppm - ppm) < 5
    assert clock.resets == 0


def test_reboot_is_followed_by_a_new_fit() -> None:
    rng = random.Random(7)
    clock = DeviceClock()
    before, after = [], []
    reboot_s = 600.0
    for dev, rx, true_ns, rebooted in stream(1200, 200, 80.0, rng, reboot_at_s=reboot_s):
        t = clock.to_host_ns(dev, rx)
        if not rebooted and true_ns - HOST0 > SETTLE_NS:
            before.append(abs(t - true_ns))
        elif rebooted and true_ns - HOST0 > (reboot_s * 1e9 + SETTLE_NS):
            after.append(abs(t - true_ns))
    assert clock.resets == 1
    assert p99(before) < 1_000_000
    assert p99(after) < 1_000_000


def test_a_silence_longer_than_the_wrap_unwraps_by_host_time() -> None:
    """Port unplugged for 80 minutes (more than 2^32 us): the clock did not reboot."""
    clock = DeviceClock()
    for k in range(100):
        clock.to_host_ns((WRAP - 500_000 + k * 10_000) % WRAP, HOST0 + k * 10_000_000 + 100_000)
    gap_ns = 80 * 60 * 10**9
    dev = (WRAP - 500_000 + 100 * 10_000 + gap_ns // 1000) % WRAP
    t = clock.to_host_ns(dev, HOST0 + 100 * 10_000_000 + gap_ns + 100_000)
    # Where the same 0.1 ms of delivery latency puts it: whole wraps were not lost.
    assert t == HOST0 + 100 * 10_000_000 + gap_ns + 100_000
    assert clock.resets == 0
