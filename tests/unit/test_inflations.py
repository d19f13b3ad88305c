"""The inflation detector on traces from the simulators' physics: profiles whose truth is known."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest

from daemon.acquisition.inflations import Inflation, InflationDetector
from daemon.influx.schema import inflation_line
from drivers.units import KPA_PER_ATM
from simulators.balloon import Balloon
from simulators.inflation import InflationLine
from simulators.profiles import ProfilePlayer, segments

RATE_HZ = 200


def trace(
    profile: str, *, seed: int = 1, noise_atm: float = 0.003, max_s: float = 600, **kw: float
) -> Iterator[tuple[int, float, float]]:
    """(time ns, pressure kPa, volume mL) at 200 Hz until the profile ends (or ``max_s``)."""
    rng = random.Random(seed)
    player = ProfilePlayer(segments(profile, rng, **kw))  # type: ignore[arg-type]
    line = InflationLine(player, Balloon())
    t0 = t_ns = 1_700_000_000 * 10**9
    while not player.finished and t_ns - t0 < max_s * 1e9:
        p = player.pressure_atm + rng.gauss(0, noise_atm)
        yield t_ns, p * KPA_PER_ATM, line.volume_ml(player.pressure_atm)
        player.advance(1 / RATE_HZ)
        t_ns += 10**9 // RATE_HZ


def detect(samples: Iterator[tuple[int, float, float | None]], **kw: float) -> list[Inflation]:
    det = InflationDetector(**kw)
    found = [det.add(t, p, v) for t, p, v in samples]
    return [f for f in found if f is not None]


def test_fatigue_run_counts_every_cycle_with_its_peak_and_hold() -> None:
    found = detect(trace("fatigue", cycles=7, rbp_atm=14.0, hold_s=1.0))
    assert [f.cycle for f in found] == list(range(1, 8))
    for f in found:
        assert f.peak_kpa / KPA_PER_ATM == pytest.approx(14.0, abs=0.02)
        assert not f.burst
        # The hold is the 1 s on the plateau, not the ramp's last 70 ms through its band
        # (noise may lift the highest pressure on into the hold: up to RISE_GAP_S).
        assert f.hold_s == pytest.approx(1.0, abs=0.1)
        # From 0.3 atm (the baseline, crossed from the -0.6 atm of the deflated line)
        # up to the plateau at 13.72 atm, at 4 atm/s.
        assert f.time_to_peak_s == pytest.approx((13.72 - 0.3) / 4, abs=0.03)
        # Quick release: -0.9 + 14.9 exp(-t / 0.25 s) atm, from the plateau's edge to 0.3.
        assert f.deflation_s == pytest.approx(0.25 * math.log(14.62 / 1.2), abs=0.03)
        assert f.volume_at_peak_ml == pytest.approx(Balloon().volume_ml(14.0), abs=0.01)
        assert f.start_ns < f.peak_ns < f.end_ns


def test_burst_is_a_collapse_that_keeps_the_volume() -> None:
    found = detect(trace("burst", seed=3, rbp_atm=14.0))
    assert len(found) == 1
    (f,) = found
    assert f.burst and f.burst_ns is not None
    assert 16.0 <= f.peak_kpa / KPA_PER_ATM <= 20.05
    assert f.peak_ns <= f.burst_ns < f.end_ns
    assert f.deflation_s < 0.25  # the collapse took 50-200 ms
    assert f.hold_s == 0.0  # it broke at the top of its ramp: no plateau, no hold


@pytest.mark.parametrize("noise_atm", [0.0, 0.005, 0.02])
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_burst_without_a_plateau_never_held(noise_atm: float, seed: int) -> None:
    """The ramp's last 2 % before the burst used to count as a hold (0.36 s at 18 atm)."""
    (f,) = detect(trace("burst", seed=seed, rbp_atm=14.0, noise_atm=noise_atm))
    assert f.burst and f.hold_s == 0.0
    assert f.time_to_peak_s is not None and f.time_to_peak_s > 10


@pytest.mark.parametrize("noise_atm", [0.0, 0.005, 0.02])
def test_a_hold_is_its_time_on_the_plateau_whatever_the_noise(noise_atm: float) -> None:
    found = detect(trace("fatigue", cycles=3, rbp_atm=10.0, hold_s=2.0, noise_atm=noise_atm))
    assert [f.cycle for f in found] == [1, 2, 3]
    for f in found:
        assert f.hold_s == pytest.approx(2.0, abs=0.3)


def test_quick_release_is_as_fast_but_not_a_burst() -> None:
    """The volume goes back into the syringe: that, not the speed, tells them apart."""
    found = detect(trace("clinical", seed=2, hold_s=3.0, max_s=120), threshold_atm=1.0)
    assert len(found) >= 5 and not any(f.burst for f in found)
    for f in found:  # the 3 s hold, not the top of the 1 atm/s ramp in the plateau band
        assert f.hold_s == pytest.approx(3.0, abs=0.1)


def test_without_a_volume_channel_only_a_near_instant_collapse_is_a_burst() -> None:
    burst = [(t, p, None) for t, p, _ in trace("burst", seed=3)]
    release = [(t, p, None) for t, p, _ in trace("fatigue", cycles=2)]
    assert [f.burst for f in detect(iter(burst))] == [True]
    assert [f.burst for f in detect(iter(release))] == [False, False]


def test_compliance_run_is_one_inflation_peaking_at_rated_pressure() -> None:
    found = detect(trace("compliance", rbp_atm=6.0, hold_s=1.0))
    assert len(found) == 1
    assert found[0].peak_kpa / KPA_PER_ATM == pytest.approx(6.0, abs=0.02)
    assert found[0].hold_s == pytest.approx(1.0, abs=0.05)  # the last step's hold


def test_noise_and_wobble_below_the_threshold_start_nothing() -> None:
    rng = random.Random(5)
    t = 0
    det = InflationDetector(threshold_atm=1.0, baseline_atm=0.3)
    for i in range(20_000):
        t += 5_000_000
        p_atm = 0.65 + 0.3 * ((i // 50) % 2) + rng.gauss(0, 0.01)  # 0.65 <-> 0.95 atm
        assert det.add(t, p_atm * KPA_PER_ATM, 1.0) is None
    assert det.cycles == 0 and det.in_progress_since is None


def test_an_inflation_ends_only_back_at_the_baseline() -> None:
    det = InflationDetector(threshold_atm=1.0, baseline_atm=0.3)
    atm = [0.0, 0.2, 0.5, 2.0, 5.0, 5.0, 0.8, 3.0, 0.4, 0.31, 0.3, 0.0]
    out = [det.add(i * 10**9, p * KPA_PER_ATM, None) for i, p in enumerate(atm)]
    assert out[:10] == [None] * 10
    f = out[10]
    assert f is not None and out[11] is None
    assert f.start_ns == 1 * 10**9  # the last sample at the baseline before the rise
    assert f.end_ns == 10 * 10**9
    assert f.peak_kpa == 5.0 * KPA_PER_ATM and f.peak_ns == 4 * 10**9
    assert f.time_to_peak_s == 3.0 and f.hold_s == 1.0 and f.deflation_s == 5.0
    assert f.volume_at_peak_ml is None and not f.burst


def test_data_that_begins_mid_inflation_starts_it_at_the_first_sample() -> None:
    det = InflationDetector()
    assert det.add(7, 8 * KPA_PER_ATM, 2.0) is None
    assert det.in_progress_since == 7
    f = det.add(9, 0.0, 0.0)
    assert f is not None and f.start_ns == 7 and f.cycle == 1


def test_baseline_must_be_below_threshold() -> None:
    with pytest.raises(ValueError, match="baseline"):
        InflationDetector(threshold_atm=0.5, baseline_atm=0.5)


@pytest.mark.parametrize("profile", ["fatigue", "compliance", "burst"])
@pytest.mark.parametrize("chunk", [1, 7, 32, 400])
def test_chunks_taken_idle_find_what_sample_by_sample_finds(profile: str, chunk: int) -> None:
    """The sink's shortcut between inflations changes nothing: same inflations, same state."""
    samples = list(trace(profile, max_s=120))
    one = detect(iter(samples))
    det = InflationDetector()
    found = []
    taken_idle = 0
    for i in range(0, len(samples), chunk):
        times, pressures, volumes = zip(*samples[i : i + chunk], strict=True)
        if det.take_idle(times, pressures):
            taken_idle += 1
            continue
        found += [det.add(t, p, v) for t, p, v in zip(times, pressures, volumes, strict=True)]
    assert [f for f in found if f is not None] == one
    assert one, "the trace has inflations"
    assert taken_idle, "and time between them"
    ref = InflationDetector()
    for t, p, v in samples:
        ref.add(t, p, v)
    assert (det._last_low_ns, det.in_progress_since) == (ref._last_low_ns, ref.in_progress_since)


def _trapezoid() -> list[tuple[int, float, float]]:
    """1 s at 0, up at 1 atm/s to 10 atm, 5 s held, down in 2 s, 1 s at 0; 100 Hz, with a
    volume that follows the pressure (no burst)."""
    atm = [0.0] * 100 + [k / 100 for k in range(1, 1001)] + [10.0] * 500
    atm += [10.0 - k / 20 for k in range(1, 201)] + [0.0] * 100
    return [(k * 10**7, p * KPA_PER_ATM, p * 0.2) for k, p in enumerate(atm)]


# Sample indices of the trapezoid's phases: baseline 0-99, rise 100-1099 (above 1 atm
# from 200), plateau 1100-1599, deflation 1600-1799 (down to 1 atm at 1780), baseline.
CUTS = {"baseline": 50, "rise": 600, "plateau": 1300, "plateau+": 1300, "deflation": 1700}
CUTS["end"] = 1850


@pytest.mark.parametrize("phase", list(CUTS))
def test_data_cut_at_the_start_flags_the_inflation_and_blanks_what_it_missed(phase: str) -> None:
    samples = _trapezoid()
    (whole,) = detect(iter(samples))
    assert whole.time_to_peak_s == pytest.approx(9.5)  # from 0.3 atm to 9.8 atm (the band)
    cut = samples[CUTS[phase] :]
    if phase == "plateau+":  # a sample just above the first, later on the plateau
        t, p, v = cut[100]
        cut[100] = (t, p + 0.01, v)
    found = detect(iter(cut))
    if phase in ("baseline",):
        assert found == [whole], "the data saw it begin: nothing is cut"
        return
    if phase == "end":
        assert found == []
        return
    (f,) = found
    assert f.cut_start and not f.cut_end and f.cut
    assert f.time_to_peak_s is None, "its rise was not seen"
    assert f.end_ns == whole.end_ns
    if phase == "rise":  # the plateau and the peak were seen whole
        assert (f.hold_s, f.deflation_s, f.peak_kpa) == (
            whole.hold_s,
            whole.deflation_s,
            whole.peak_kpa,
        )
    if phase == "plateau":  # the hold's beginning was not seen, and on a flat plateau
        # the first sample is the highest: the peak may have been before the data
        assert f.hold_s is None and f.deflation_s is None
    if phase == "plateau+":  # past the first sample, a higher one: that peak was seen
        assert f.hold_s is None
        assert f.deflation_s == pytest.approx(whole.deflation_s, abs=0.011)  # a sample
    if phase == "deflation":  # nor the peak: what the data shows is only the way down
        assert f.hold_s is None and f.deflation_s is None


@pytest.mark.parametrize("phase", ["rise", "plateau", "deflation"])
def test_data_cut_at_the_end_gives_the_inflation_so_far_flagged(phase: str) -> None:
    samples = _trapezoid()[: CUTS[phase]]
    det = InflationDetector()
    assert [det.add(t, p, v) for t, p, v in samples] == [None] * len(samples)
    f = det.finish(samples[-1][0])
    assert f is not None and f.cut_end and not f.cut_start
    assert (f.time_to_peak_s, f.hold_s, f.deflation_s, f.burst) == (None, None, None, False)
    assert f.peak_kpa == max(p for _, p, _ in samples), "the peak so far"
    assert f.end_ns == samples[-1][0] and f.cycle == 1
    assert det.finish(samples[-1][0]) is None, "once"


def test_a_cut_inflation_says_so_in_its_pv_inflation_point() -> None:
    (f,) = detect(iter(_trapezoid()[600:]))
    line = inflation_line("box", "s1", f)
    assert "cut_start=true" in line and "cut_end=false" in line
    assert "time_to_peak_s" not in line, "unknown is left out, never written as a number"
    (whole,) = detect(iter(_trapezoid()))
    assert "cut_start=false" in inflation_line("box", "s1", whole)


def test_a_gap_in_the_data_ends_the_inflation_under_way_and_cuts_the_next() -> None:
    """A port lost for 3 s mid-inflation: nothing is measured across it."""
    samples = list(trace("fatigue", cycles=3, rbp_atm=10.0, hold_s=2.0))
    t0 = samples[0][0]
    lost_from, lost_to = t0 + int(4.0e9), t0 + int(7.0e9)  # in cycle 1's hold, to cycle 2
    kept = [s for s in samples if not lost_from <= s[0] < lost_to]
    found = detect(iter(kept))
    cut = next(f for f in found if f.cut_end)
    assert cut.end_ns < lost_from and cut.hold_s is None and cut.deflation_s is None
    after = found[found.index(cut) + 1]
    assert after.start_ns >= lost_to, "what follows starts after the gap"
    assert all(not (f.start_ns < lost_from and f.end_ns >= lost_to) for f in found)
    assert [f.cycle for f in found] == list(range(1, len(found) + 1)), "one count, on"


def test_polled_slowly_is_no_gap() -> None:
    """A device read every 2 s: its own spacing, not a gap between every two samples."""
    det = InflationDetector()
    atm = [0.0, 0.0, 2.0, 5.0, 5.0, 5.0, 0.0, 0.0]
    out = [det.add(i * 2 * 10**9, p * KPA_PER_ATM, None) for i, p in enumerate(atm)]
    (f,) = [x for x in out if x is not None]
    assert not f.cut and f.start_ns == 2 * 10**9 and f.end_ns == 12 * 10**9


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000])
def test_chunks_taken_whole_give_what_samples_one_by_one_give(chunk: int) -> None:
    """The live sink takes a chunk under the threshold in one call (``take_idle``): the
    same inflations, gaps included, as the report's sample by sample."""
    samples = list(trace("fatigue", cycles=3, rbp_atm=10.0, hold_s=2.0))
    t0 = samples[0][0]
    samples = [s for s in samples if not t0 + int(2.2e9) <= s[0] < t0 + int(3.5e9)]
    samples = [s for s in samples if not t0 + int(9.9e9) <= s[0] < t0 + int(11.0e9)]
    one = detect(iter(samples))
    det, got = InflationDetector(), []
    for k in range(0, len(samples), chunk):
        part = samples[k : k + chunk]
        if det.take_idle([t for t, _, _ in part], [p for _, p, _ in part]):
            continue
        got += [f for t, p, v in part if (f := det.add(t, p, v)) is not None]
    assert got == one and any(f.cut for f in one)
