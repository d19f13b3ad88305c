"""Device clock to host time: unwrap, keep the device's spacing, survive reboots, never go back."""

from __future__ import annotations

import itertools
import random

from daemon.acquisition.clock import WRAP, DeviceClock

HOST0 = 1_800_000_000_000_000_000


def test_spacing_is_the_devices_across_the_wrap() -> None:
    clock = DeviceClock()
    t0 = WRAP - 50_000
    out = []
    for k in range(200):
        dev = (t0 + k * 1000) % WRAP
        rx = HOST0 + k * 1_000_000 + 300_000  # constant 0.3 ms delivery latency
        out.append(clock.to_host_ns(dev, rx))
    assert all(b - a == 1_000_000 for a, b in itertools.pairwise(out))
    assert out[0] == HOST0 + 300_000


def test_bursty_delivery_is_anchored_on_the_fastest_read() -> None:
    """Reads arrive in bursts up to 16 ms late; the anchor is the least-delayed one."""
    rng = random.Random(1)
    clock = DeviceClock()
    errors = []
    for k in range(5000):  # 10 s at 500 Hz
        true_ns = HOST0 + k * 2_000_000
        burst_end = ((k // 8) + 1) * 8 * 2_000_000  # delivered every 8 samples
        rx = HOST0 + burst_end + rng.randrange(100_000, 2_000_000)
        t = clock.to_host_ns((7 + k * 2000) % WRAP, rx)
        errors.append(t - true_ns)
    late = errors[1000:]
    # The spacing is the device's, not the bursts': the offset moves by microseconds at most.
    assert max(late) - min(late) < 100_000
    assert 0 <= min(late) < 2_200_000


def test_reboot_reanchors_and_time_never_goes_back() -> None:
    clock = DeviceClock()
    out = [clock.to_host_ns(4_000_000_000 + k * 1000, HOST0 + k * 1_000_000) for k in range(10)]
    # The device reboots: its clock restarts near zero.
    out += [clock.to_host_ns(500 + k * 1000, HOST0 + (20 + k) * 1_000_000) for k in range(10)]
    assert all(b > a for a, b in itertools.pairwise(out))
    assert out[10] == HOST0 + 20 * 1_000_000 - 500 * 1000 + 500 * 1000
    assert clock.resets == 1


def test_drift_is_followed_both_ways() -> None:
    for ppm in (-100, 100):
        clock = DeviceClock()
        worst = 0
        for k in range(60 * 100):  # 60 s at 100 Hz
            true_ns = HOST0 + k * 10_000_000
            dev_us = int(k * 10_000 * (1 + ppm * 1e-6))
            t = clock.to_host_ns(dev_us % WRAP, true_ns + 200_000)
            worst = max(worst, abs(t - true_ns - 200_000))
        assert worst < 1_500_000, (ppm, worst)
