"""Driver records onto host time: one device's samples and events, stamped in UTC ns.

Pure (the receive times come with the records), so its rules are unit-tested
without a port: a sample with a device clock gets its device time fitted onto host
time (``DeviceClock``; a block's samples in one call); one without gets its receive
time (less the instrument's declared ``latency_ms``), kept unique per series; a
``gap`` is stamped with the sample that ends it (every record of a chunk shares the
receive time, that sample's time is unique); a ``boot`` restarts the clock; an
identity becomes an ``identity`` event when it is new or changed (devices repeat it).
The samples go on as columns (``Samples``).
"""

from __future__ import annotations

from daemon.acquisition.clock import DeviceClock
from daemon.pipeline import Chunk, Samples, StampedEvent
from drivers.records import DeviceInfo, Event, Record, Sample, SampleBlock


class Stamper:
    def __init__(self, latency_ns: int = 0) -> None:
        self.latency_ns = latency_ns
        """A clockless device's delay from reading to sending (``latency_ms``): what its
        receive time is later than the reading."""
        self.clock = DeviceClock()
        self._last_rx_stamp = 0
        self.identity: DeviceInfo | None = None

    def stamp(
        self, raw: bytes, rx_time_ns: int, records: list[Record], *, rebooted: bool, mark: int = 0
    ) -> Chunk:
        """The chunk ``raw`` became. ``rebooted``: the driver saw a boot in it, so its
        last sample's clock is a new one, not a bound on the old fit. ``mark``: the
        journal record it came from."""
        if not rebooted:
            self._observe_last_sample(records)
        samples = Samples()
        events: list[StampedEvent] = []
        gap: Event | None = None
        for record in records:
            if isinstance(record, SampleBlock):
                stamped = self.clock.to_host_times(record.device_time_us, record.rx_time_ns)
                if gap is not None and stamped:
                    events.append(_gap(gap, stamped[0]))
                    gap = None
                samples.add_block(stamped, record)
            elif isinstance(record, Sample):
                seq, t, rx, values, flags = record
                if t is None:  # no device clock: receive time, kept unique per series
                    time_ns = max(rx - self.latency_ns, self._last_rx_stamp + 1)
                    self._last_rx_stamp = time_ns
                else:
                    time_ns = self.clock.to_host_ns(t, rx)
                if gap is not None:
                    events.append(_gap(gap, time_ns))
                    gap = None
                samples.add_row(time_ns, rx, seq, values, flags)
            elif isinstance(record, Event):
                if record.code == "gap":  # drivers put it just before the sample ending it
                    gap = record
                    continue
                if record.code == "boot":
                    self.clock.reset()
                t = record.device_time_us
                time_ns = (
                    record.rx_time_ns
                    if t is None
                    else self.clock.event_time_ns(t, record.rx_time_ns)
                )
                events.append(StampedEvent(time_ns, record.code, record.detail, record.value))
            elif isinstance(record, DeviceInfo):
                if self._identity_changed(record):
                    events.append(identity_event(record))
                self.identity = record
        if gap is not None:
            events.append(_gap(gap, rx_time_ns))
        return Chunk(raw, rx_time_ns, samples, events, [], mark=mark)

    def _observe_last_sample(self, records: list[Record]) -> None:
        """Let the clock see the chunk's tightest bound first (see ``DeviceClock.observe``)."""
        last = records[-1] if records else None
        if not isinstance(last, (Sample, SampleBlock)):  # rarely: an event or identity ends it
            last = next(
                (r for r in reversed(records) if isinstance(r, (Sample, SampleBlock))), None
            )
        if isinstance(last, SampleBlock):
            if last.device_time_us:
                self.clock.observe(last.device_time_us[-1], last.rx_time_ns)
        elif last is not None and last.device_time_us is not None:
            self.clock.observe(last.device_time_us, last.rx_time_ns)

    def _identity_changed(self, info: DeviceInfo) -> bool:
        old = self.identity
        return old is None or (info.model, info.serial, info.firmware, info.extra) != (
            old.model,
            old.serial,
            old.firmware,
            old.extra,
        )


def identity_event(info: DeviceInfo, time_ns: int | None = None) -> StampedEvent:
    """``info`` as an event: when it was received, or ``time_ns`` (said again later)."""
    detail = f"model={info.model} serial={info.serial} firmware={info.firmware}"
    if info.extra.get("resolution"):
        detail += f" resolution={info.extra['resolution']}"
    return StampedEvent(info.rx_time_ns if time_ns is None else time_ns, "identity", detail, None)


def identity_of(detail: str) -> dict[str, str]:
    """``model``, ``serial``, ``firmware`` (and ``resolution``, where the driver gave one)
    back from an ``identity`` event's detail."""
    return dict(part.split("=", 1) for part in detail.split() if "=" in part)


def _gap(gap: Event, time_ns: int) -> StampedEvent:
    return StampedEvent(time_ns, "gap", gap.detail, float(int(gap.value or 0)))
