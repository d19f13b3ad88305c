"""Device clock to host time: unwrap, keep the device's spacing, survive reboots, never go back."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

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


def _state(clock: DeviceClock) -> dict[str, object]:
    state = dict(vars(clock))
    state["_bins"] = list(clock._bins)
    return state


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, WRAP - 1),  # the block's first device time
            st.sampled_from([1, 250, 500, 1000, 2000]),  # its period, µs
            st.integers(1, 40),  # its samples
            st.integers(-20_000_000, 40_000_000),  # its receive time after the nominal
            st.booleans(),  # whether it follows on from the block before
            st.booleans(),  # observed first (as stamping does) or not
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_block_stamps_as_its_samples_one_by_one(
    blocks: list[tuple[int, int, int, int, bool, bool]],
) -> None:
    """``to_host_times`` is a shortcut, not another fit: same times, same state after."""
    one, block = DeviceClock(), DeviceClock()
    t_next, host = 0, HOST0
    for start, period, n, late, follows, observe in blocks:
        t0 = t_next if follows else start
        t_next = (t0 + n * period) % WRAP
        host += n * period * 1000
        rx = host + late
        end = t0 + n * period
        times = (
            range(t0, end, period) if end <= WRAP else [t % WRAP for t in range(t0, end, period)]
        )
        if observe:
            one.observe(times[-1], rx)
            block.observe(times[-1], rx)
        assert block.to_host_times(times, rx) == [one.to_host_ns(t, rx) for t in times]
        assert _state(block) == _state(one)
