"""The pipeline's pure stages: stamping driver records onto host time, and one device's
fan-out of each chunk to its sinks (the inflation detector's chunks after the read's)."""

from __future__ import annotations

import itertools

from daemon.acquisition.device import Acquisition
from daemon.acquisition.inflation_sink import InflationSink
from daemon.acquisition.inflations import InflationDetector
from daemon.acquisition.stamping import Stamper
from daemon.config import DeviceConfig
from daemon.influx.sink import InfluxSink
from daemon.pipeline import Chunk, Samples, StampedEvent, StampedSample
from daemon.sessions.state import SessionState
from drivers.pvs import sentence
from drivers.records import DeviceInfo, Event, Sample
from drivers.units import KPA_PER_ATM

RX = 1_700_000_000_000_000_000


def sample(seq: int, device_us: int | None, rx: int = RX, p: float = 100.0) -> Sample:
    return Sample(seq, device_us, rx, {"pressure_kpa": p}, 0)


def test_a_gap_is_stamped_with_the_sample_that_ends_it() -> None:
    stamper = Stamper()
    gap = Event(None, None, RX, "gap", "3 samples lost", 3.0)
    chunk = stamper.stamp(b"x", RX, [sample(1, None), gap, sample(5, None)], rebooted=False)
    assert chunk.samples.seq == [1, 5]
    (event,) = chunk.events
    assert (event.code, event.value) == ("gap", 3.0)
    assert event.time_ns == chunk.samples.time_ns[1] != chunk.samples.time_ns[0]
    assert chunk.raw == b"x" and chunk.rx_time_ns == RX


def test_samples_without_a_device_clock_get_unique_receive_times() -> None:
    stamper = Stamper()
    a = stamper.stamp(b"", RX, [sample(1, None), sample(2, None)], rebooted=False)
    b = stamper.stamp(b"", RX, [sample(3, None)], rebooted=False)
    assert a.samples.time_ns + b.samples.time_ns == [RX, RX + 1, RX + 2]


def test_device_clock_samples_keep_the_device_spacing_and_a_boot_resets_the_clock() -> None:
    stamper = Stamper()
    rx = [RX + k * 10_000_000 for k in range(5)]
    chunk = stamper.stamp(
        b"", rx[-1], [sample(k, 1_000 + k * 10_000, rx[k]) for k in range(5)], rebooted=False
    )
    times = chunk.samples.time_ns
    assert [b - a for a, b in itertools.pairwise(times)] == [10_000_000] * 4
    assert all(t <= r for t, r in zip(times, rx, strict=True)), "never after it was received"
    boot = Event(None, 5, rx[-1], "boot", "", None)
    stamper.stamp(b"", rx[-1], [boot], rebooted=True)
    assert stamper.clock.resets == 1


def test_identity_is_an_event_only_when_new_or_changed() -> None:
    stamper = Stamper()
    info = DeviceInfo("BIX-30", "SN1", "2.3.1", RX, {})
    first = stamper.stamp(b"", RX, [info], rebooted=False)
    again = stamper.stamp(b"", RX, [info._replace(rx_time_ns=RX + 1)], rebooted=False)
    new_fw = stamper.stamp(b"", RX, [info._replace(firmware="2.4.0")], rebooted=False)
    assert [e.code for e in first.events] == ["identity"]
    assert "serial=SN1" in first.events[0].detail
    assert again.events == []
    assert [e.detail for e in new_fw.events] == ["model=BIX-30 serial=SN1 firmware=2.4.0"]


class Collect:
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []

    def take(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)


def pvs_bytes(pressures_atm: list[float]) -> bytes:
    return b"".join(
        sentence(f"PVS,{k},{1_000 + k * 20_000},{p:.3f},ATM,{p / 10:.3f},00")
        for k, p in enumerate(pressures_atm)
    )


def test_each_read_is_one_chunk_for_every_sink_in_order() -> None:
    acq = Acquisition(DeviceConfig(name="d1", driver="pvs", port="/dev/null"))
    first, second = Collect(), Collect()
    acq.add_sink(first)
    acq.add_sink(second)
    acq._on_chunk(pvs_bytes([0.1, 0.2, 0.3]), RX)
    acq._on_chunk(b"$PVS,garbage*00\r\n" + pvs_bytes([0.4]), RX + 1)
    assert first.chunks == second.chunks
    assert [len(c.samples) for c in first.chunks] == [3, 1]
    assert acq.status.samples == 4
    assert acq.status.health()["dropped"] == 1, "the malformed sentence: counted, not recorded"


def test_an_inflation_goes_to_every_sink_after_the_read_that_completed_it() -> None:
    """The detector emits while the read's chunk is being handed out: every sink gets
    the read's chunk first, then the inflation's (the order a sink sees time in)."""
    acq = Acquisition(DeviceConfig(name="d1", driver="pvs", port="/dev/null"))
    lines: list[str] = []
    acq.add_sink(InfluxSink("d1", SessionState("s"), lines.extend))
    detector = InflationDetector(threshold_atm=1.0, baseline_atm=0.3)
    acq.add_sink(InflationSink("d1", detector, acq.emit))
    seen = Collect()
    acq.add_sink(seen)
    ramp = [0.0, 0.5, 2, 4, 6, 6, 6, 4, 2, 0.2, 0.0]
    acq._on_chunk(pvs_bytes(ramp), RX)
    assert [len(c.samples) for c in seen.chunks] == [len(ramp), 0]
    (inflation,) = seen.chunks[1].inflations
    assert abs(inflation.peak_kpa - 6 * KPA_PER_ATM) < 1e-6
    assert [x.split(",", 1)[0] for x in lines].count("pv_inflation") == 1


def test_pvlog_events_reach_every_sink_stamped_now() -> None:
    acq = Acquisition(DeviceConfig(name="d1", driver="pvs", port="/dev/null"))
    seen = Collect()
    acq.add_sink(seen)
    acq.event("port_lost", "/dev/x: gone", None)
    ((event,),) = [c.events for c in seen.chunks]
    assert isinstance(event, StampedEvent)
    assert (event.code, event.detail, seen.chunks[0].raw) == ("port_lost", "/dev/x: gone", b"")


def test_at_the_stop_an_inflation_under_way_goes_out_cut_to_every_sink() -> None:
    acq = Acquisition(DeviceConfig(name="box", driver="pvs", port="/dev/null"))
    seen = Collect()
    sink = InflationSink("box", InflationDetector(), acq.emit)
    acq.add_sink(sink)
    acq.add_sink(seen)
    rows = [StampedSample(k, k, k, {"pressure_kpa": p * KPA_PER_ATM}, 0) for k, p in
            enumerate([0.0, 0.1, 3.0, 6.0, 8.0])]  # fmt: skip
    acq.emit(Chunk(b"", 4, Samples.of(rows), [], []))
    sink.finish()
    (cut,) = [i for c in seen.chunks for i in c.inflations]
    assert (cut.cut_start, cut.cut_end, cut.start_ns, cut.end_ns) == (False, True, 1, 4)
    assert cut.peak_kpa == 8.0 * KPA_PER_ATM and cut.time_to_peak_s is None
    sink.finish()
    assert len([i for c in seen.chunks for i in c.inflations]) == 1, "said once"
