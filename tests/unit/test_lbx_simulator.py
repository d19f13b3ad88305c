"""The simulated LBX box: what it sends decodes to exactly what its truth says, its
arterial waveform looks like one, and a reboot restarts its clock and block_seq."""

from __future__ import annotations

import itertools
import random

from drivers.records import DeviceInfo, Event, Sample
from simulators.arterial import ArterialPressure, ArterialSettings
from simulators.faults import Faults
from simulators.lbx_device import LbxDevice, LbxSettings
from simulators.profiles import ProfilePlayer, segments
from tests.support.lbx_rows import LbxRows


def box(seed: int = 1, **settings: object) -> LbxDevice:
    rng = random.Random(seed)
    return LbxDevice(
        LbxSettings(**settings),  # type: ignore[arg-type]
        ProfilePlayer(segments("compliance", rng, rbp_atm=8, hold_s=0.5)),
        rng,
    )


def test_frames_decode_to_the_truth() -> None:
    dev = box(rate_hz=500, drift_ppm=50)
    parser = LbxRows()
    records, truth = [], []
    for _ in range(5000):  # 10 s
        for e in dev.step():
            records += parser.feed(e.data, 0)
            truth.append(e.truth)
    samples = [r for r in records if isinstance(r, Sample)]
    expected = [s for t in truth if t["kind"] == "block" for s in t["samples"]]
    assert [(s.device_time_us, s.values) for s in samples] == [
        (t["t_us"], t["values"]) for t in expected
    ]
    assert len(samples) == 5000
    assert sum(isinstance(r, DeviceInfo) for r in records) == 10  # INFO every second
    codes = {r.code for r in records if isinstance(r, Event)}
    assert "mark" in codes
    # The device clock starts 5 s before the 32-bit wrap and crosses it.
    times = [s.device_time_us for s in samples]
    assert times[0] > 2**32 - 6_000_000
    assert min(times) < 10_000_000
    assert max(s.values["pressure_kpa"] for s in samples) > 5 * 101.325  # the steps climb


def test_faults_are_in_the_truth_and_never_decoded() -> None:
    dev = box(rate_hz=1000)
    dev.faults = Faults(bad_checksum=0.05, truncate=0.05, drop=0.05, garbage=0.05, sync=0.1)
    parser = LbxRows()
    got: list[tuple[int | None, dict[str, float]]] = []
    valid = []
    whys = set()
    for _ in range(20_000):
        for e in dev.step():
            got += [
                (r.device_time_us, r.values)
                for r in parser.feed(e.data, 0)
                if isinstance(r, Sample)
            ]
            if e.truth["kind"] == "block":
                if e.truth["valid"]:
                    valid += [(s["t_us"], s["values"]) for s in e.truth["samples"]]
                else:
                    whys.add(e.truth["why"])
    assert whys == {"bad_crc", "truncated", "dropped"}
    assert got == valid
    assert any(v["pressure_kpa"] == 232.05 for _, v in valid)  # SYNC1 SYNC2 as data
    assert parser.dropped["crc"] > 0


def test_reboot_restarts_clock_and_block_seq() -> None:
    dev = box()
    for _ in range(3000):
        dev.step()
    assert dev.seq == 300
    emitted = dev.reboot(new_t0_us=1234)
    assert [e.truth["kind"] for e in emitted] == ["identity", "heartbeat"]
    assert emitted[1].truth["uptime_s"] == 0
    assert dev.seq == 0
    assert dev.t_us == 1234


def test_arterial_waveform_is_120_over_80_at_the_set_rate() -> None:
    wave = ArterialPressure(
        ArterialSettings(heart_rate_bpm=75, respiratory_mmhg=0.0), random.Random(3)
    )
    values = [wave.advance(0.001) for _ in range(60_000)]  # one minute at 1 kHz
    assert 118 < max(values) <= 120.5
    assert 79.5 <= min(values) < 82
    # Beats: upstrokes through 100 mmHg, about 75 of them.
    beats = sum(1 for a, b in itertools.pairwise(values) if a < 100 <= b)
    assert 70 <= beats <= 80
