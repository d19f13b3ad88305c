"""The simulated device: physically plausible profiles, and a truth file that tells the truth."""

from __future__ import annotations

import itertools
import random

import pytest

from drivers.pvs import PvsParser
from drivers.records import Sample
from simulators.balloon import Balloon
from simulators.device import Emission
from simulators.faults import Faults
from simulators.profiles import ProfilePlayer, segments
from simulators.pvs_device import PvsDevice, PvsSettings


def trace(profile: str, seconds: float, dt: float = 0.01, **kw: object) -> list[float]:
    player = ProfilePlayer(segments(profile, random.Random(5), **kw))  # type: ignore[arg-type]
    out = []
    for _ in range(int(seconds / dt)):
        player.advance(dt)
        out.append(player.pressure_atm)
    return out


def test_balloon_geometry() -> None:
    b = Balloon.parse("8x40")
    assert 1.95 < b.nominal_ml < 2.05  # pi * 4^2 * 40 mm^3
    assert b.volume_ml(0) == 0
    vols = [b.volume_ml(p / 10) for p in range(1, 200)]
    assert vols == sorted(vols)  # more pressure, more volume
    assert 1.8 < b.volume_ml(8) < 2.5  # about nominal (plus dead space) at nominal pressure


def test_clinical_ramp_hold_and_quick_release() -> None:
    p = trace("clinical", 40, hold_s=15)  # the first inflation
    peak = max(p)
    assert 6 <= peak <= 12
    rates = [(b - a) / 0.01 for a, b in itertools.pairwise(p) if b > a > 0.5]
    assert max(rates) == pytest.approx(1.0, rel=0.01)  # ~1 atm/s ramp
    assert min(p) == pytest.approx(-0.9, abs=0.05)  # quick release to vacuum
    held = sum(1 for x in p if x == peak) * 0.01
    assert held == pytest.approx(15, abs=0.05)
    fall = next(i for i in range(p.index(peak), len(p)) if p[i] < 0) - p.index(peak)
    assert fall * 0.01 < 1.5 + 15  # deflation takes about a second after the hold


def test_compliance_steps_of_one_atm_to_rbp() -> None:
    p = trace("compliance", 120, rbp_atm=10, hold_s=2)
    plateaus = sorted({round(x, 6) for x in p if abs(x - round(x)) < 1e-9 and x > 0.5})
    assert plateaus == [float(i) for i in range(1, 11)]


def test_burst_collapses_fast_while_volume_rises() -> None:
    rng = random.Random(11)
    player = ProfilePlayer(segments("burst", rng, rbp_atm=14))
    dev = PvsDevice(PvsSettings(rate_hz=500, noise_atm=0), player, rng)
    samples = [
        (float(e.truth["pressure"]), e.truth["volume_ml"])
        for _ in range(500 * 40)
        for e in dev.step()
        if e.truth.get("kind") == "sample"
    ]
    pressures = [s[0] for s in samples]
    peak_i = pressures.index(max(pressures))
    assert 16 <= pressures[peak_i] <= 20
    low_i = next(i for i in range(peak_i, len(samples)) if pressures[i] < 0.5)
    assert 0.04 <= (low_i - peak_i) / 500 <= 0.21  # collapse in 50-200 ms
    assert samples[low_i + 500][1] > samples[peak_i][1]  # fluid keeps flowing out
    assert pressures[-1] < 0.5


def test_fatigue_cycles() -> None:
    p = trace("fatigue", 200, rbp_atm=12, cycles=10)
    rises = sum(1 for a, b in itertools.pairwise(p) if a < 6 <= b)
    assert rises == 10


def run_device(seed: int, faults: Faults, steps: int = 3000) -> list[Emission]:
    rng = random.Random(seed)
    player = ProfilePlayer(segments("clinical", rng))
    settings = PvsSettings(rate_hz=100, unit="PSI", drift_ppm=50, sensor_fault=0.01)
    dev = PvsDevice(settings, player, rng, faults=faults)
    out = []
    for _ in range(steps):
        out += dev.step()
    return out


def test_same_seed_same_bytes() -> None:
    faults = Faults(bad_checksum=0.05, garbage=0.05, drop=0.05, truncate=0.05, bad_field=0.05)
    a = b"".join(e.data for e in run_device(9, faults))
    assert a == b"".join(e.data for e in run_device(9, faults))
    assert a != b"".join(e.data for e in run_device(10, faults))


def test_truth_matches_what_a_parser_reads() -> None:
    faults = Faults(bad_checksum=0.05, garbage=0.05, drop=0.05, truncate=0.05, bad_field=0.05)
    emissions = run_device(4, faults)
    parser = PvsParser()
    got = [r for r in parser.feed(b"".join(e.data for e in emissions), 0) if isinstance(r, Sample)]
    truth = [e.truth for e in emissions if e.truth.get("kind") == "sample"]
    valid = [t for t in truth if t["valid"]]
    assert len(valid) < len(truth)  # faults happened
    assert {t["why"] for t in truth if not t["valid"]} == {
        "bad_checksum",
        "dropped",
        "truncated",
        "bad_field",
    }
    assert [(s.seq, s.device_time_us) for s in got] == [(t["seq"], t["t_us"]) for t in valid]
    for s, t in zip(got, valid, strict=True):
        assert s.values.get("pressure_kpa") == t["pressure_kpa"]
        assert s.values["volume_ml"] == t["volume_ml"]
        assert s.flags == t["flags"]
    assert any(t["pressure_kpa"] is None for t in valid)  # sensor faults are valid samples


def test_device_clock_drifts_and_wraps() -> None:
    rng = random.Random(1)
    dev = PvsDevice(
        PvsSettings(rate_hz=100, drift_ppm=100, t0_us=2**32 - 1_000_000),
        ProfilePlayer(segments("clinical", rng)),
        rng,
    )
    ts = [e.truth["t_us"] for _ in range(1000) for e in dev.step() if e.truth["kind"] == "sample"]
    span = sum((b - a) % 2**32 for a, b in itertools.pairwise(ts))
    assert span == pytest.approx(999 * 10_000 * 1.0001, abs=2)
    assert min(ts) < 1_000_000 < 2**32 - 1_000_000 <= max(ts)  # wrapped


def test_faults_reject_unknown_names_and_bad_probabilities() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Faults().updated({"smoke": 1})
    with pytest.raises(ValueError, match="probability"):
        Faults().updated({"drop": 2})
    assert Faults().updated({"drop": 0.5}).drop == 0.5
