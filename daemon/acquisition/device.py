"""One device: port -> driver -> timestamps -> lines for the batcher.

Each device runs as its own task with its own port, parser and clock, so one
device's fault or silence never holds up another's samples. The port is reopened
with capped backoff whenever it fails or vanishes; the outage becomes an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from daemon.acquisition.clock import DeviceClock
from daemon.acquisition.inflations import Inflation, InflationDetector, inflation_fields
from daemon.config import DeviceConfig, InflationConfig
from daemon.influx.lineprotocol import SampleLines, encode_line, series_prefix
from daemon.mqtt.live import LiveStream
from daemon.recordings.writer import DeviceRecording
from drivers.lbx import LbxParser
from drivers.port import PortError, SerialPort
from drivers.pvs import PvsParser
from drivers.records import DeviceInfo, Event, Record, Sample
from drivers.units import kpa_to_atm

log = logging.getLogger(__name__)

REOPEN_FIRST_S = 0.05
REOPEN_CAP_S = 0.5
"""A returning port is read again within half a second (retrying a missing path costs
nothing: one failed open)."""

LineSink = Callable[[list[str]], None]


Parser = PvsParser | LbxParser


def make_parser(device: DeviceConfig) -> Parser:
    if device.driver == "pvs":
        return PvsParser()
    if device.driver == "lbx":
        return LbxParser(device.channel_map() or None)
    raise ValueError(f"unknown driver {device.driver!r}")


class Acquisition:
    """Reads one device for as long as the daemon runs."""

    def __init__(
        self,
        device: DeviceConfig,
        *,
        session: str,
        static_tags: dict[str, str],
        sink: LineSink,
        live: LiveStream | None = None,
        recording: DeviceRecording | None = None,
        inflation: InflationConfig | None = None,
    ) -> None:
        self.device = device
        self.inflations = (
            InflationDetector(
                threshold_atm=inflation.threshold_atm, baseline_atm=inflation.baseline_atm
            )
            if inflation is not None and inflation.enabled
            else None
        )
        self.live = live
        self.recording = recording
        self.parser = make_parser(device)
        self.clock = DeviceClock()
        self._sink = sink
        self._static_tags = static_tags
        self.set_session(session)
        self._last_rx_stamp = 0
        self.samples = 0
        self.gaps = 0
        self.lost_samples = 0
        self.port_outages = 0
        self.stalls = 0
        self.online = False
        self.stalled_since: float | None = None
        """Monotonic time the port fell silent, while it is stalled."""
        self._last_rx = time.monotonic()
        self.bytes_read = 0
        self.identity: DeviceInfo | None = None
        self.port: SerialPort | None = None

    def set_session(self, session: str) -> None:
        """Every sample and event from now on carries ``session`` as its tag."""
        self.session = session
        tags = {**self._static_tags, "device": self.device.name, "session": session}
        self._samples = SampleLines(series_prefix("pv_sample", tags))
        self._event_tags = {"device": self.device.name, "session": session}
        if self.live is not None:
            self.live.session = session
        if self.recording is not None:
            self.recording.set_session(session)

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop``; a failure of this device never ends the task."""
        while not stop.is_set():
            try:
                await self._read_until_lost_or_stopped(stop)
            except Exception:
                log.exception("%s: unexpected failure; starting over in a second", self.device.name)
                await _sleep_unless(stop, REOPEN_CAP_S)

    async def _read_until_lost_or_stopped(self, stop: asyncio.Event) -> None:
        attempt = 0
        was_lost = False
        while not stop.is_set():
            port = SerialPort(
                self.device.port,
                baudrate=self.device.baudrate,
                allowed_writes=self.parser.allowed_writes,
                read_interval_s=self.device.read_interval_ms / 1000,
            )
            try:
                port.open()
            except PortError as exc:
                if attempt == 0:
                    log.warning("%s: %s; retrying until it appears", self.device.name, exc)
                delay = min(REOPEN_CAP_S, REOPEN_FIRST_S * 2**attempt)
                attempt += 1
                await _sleep_unless(stop, delay)
                continue
            if was_lost:
                log.info("%s: %s is back", self.device.name, self.device.port)
                self.event("port_restored", f"{self.device.port} reopened", None)
            attempt = 0
            self.online = True
            self._state("online")
            log.info("%s: reading %s (%s)", self.device.name, self.device.port, self.device.driver)
            why = await self._read(port, stop)
            if stop.is_set():
                return
            was_lost = True
            self.port_outages += 1
            self.online = False
            self.stalled_since = None
            log.warning("%s: lost %s: %s", self.device.name, self.device.port, why)
            self.event("port_lost", f"{self.device.port}: {why}", None)
            self._state("offline", "port_lost")

    async def _read(self, port: SerialPort, stop: asyncio.Event) -> str:
        """Read ``port`` until it is lost (returns why) or ``stop``; always closes it."""
        self.port = port
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        self._last_rx = time.monotonic()
        watchdog = asyncio.create_task(self._watch_for_stall())
        try:
            port.start(self._on_chunk)
            assert port.lost is not None
            lost: asyncio.Future[Any] = port.lost
            await asyncio.wait([lost, stopped], return_when=asyncio.FIRST_COMPLETED)
            return lost.result() if lost.done() else "stopping"
        finally:
            watchdog.cancel()
            stopped.cancel()
            port.close()
            self.port = None

    async def _watch_for_stall(self) -> None:
        """An open port silent for ``stall_timeout_s`` is a stalled device: said once."""
        timeout = self.device.stall_timeout_s
        if not timeout:
            return
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            silent = time.monotonic() - self._last_rx
            if silent >= timeout and self.stalled_since is None:
                self.stalled_since = self._last_rx
                self.stalls += 1
                log.warning("%s: no bytes for %.1f s: stalled", self.device.name, silent)
                self.event("stalled", f"{self.device.port}: no bytes for {silent:.1f} s", None)
                self._state("stalled", "silent")

    def _resumed(self) -> None:
        assert self.stalled_since is not None
        silent = time.monotonic() - self.stalled_since
        self.stalled_since = None
        log.info("%s: bytes again after %.1f s", self.device.name, silent)
        self.event("resumed", f"{self.device.port}: bytes again after {silent:.1f} s", silent)
        self._state("online")

    def _state(self, state: str, reason: str = "") -> None:
        """A new state: on the live status, and at once in ``pvlog_health``."""
        if self.live is not None:
            self.live.set_state(state, reason)
        self._sink([self.health_line(time.time_ns())])

    def _on_chunk(self, data: bytes, rx_time_ns: int) -> None:
        self.bytes_read += len(data)
        self._last_rx = time.monotonic()
        if self.stalled_since is not None:
            self._resumed()
        rec = self.recording
        if rec is not None:
            rec.add_raw(data, rx_time_ns)
        lines: list[str] = []
        live = self.live
        gap: Event | None = None
        inflations = self.inflations
        boots = self.parser.boots
        records = self.parser.feed(data, rx_time_ns)
        if self.parser.boots == boots:  # across a reboot the last sample's clock is new
            self._observe_last_sample(records)
        for record in records:
            if type(record) is Sample:
                t = record.device_time_us
                if t is None:  # no device clock: receive time, kept unique per series
                    time_ns = max(record.rx_time_ns, self._last_rx_stamp + 1)
                    self._last_rx_stamp = time_ns
                else:
                    time_ns = self.clock.to_host_ns(t, record.rx_time_ns)
                if gap is not None:
                    # Stamped with the sample that ends the gap: unique, unlike the
                    # receive time that every record of a chunk shares.
                    lines.append(self._gap(gap, time_ns))
                    gap = None
                lines.append(self._samples.encode(record.values, record.seq, record.flags, time_ns))
                self.samples += 1
                if live is not None:
                    live.add_sample(time_ns, record.seq, record.values, record.flags)
                if rec is not None:
                    rec.add_sample(
                        time_ns, record.rx_time_ns, record.seq, record.values, record.flags
                    )
                if inflations is not None:
                    p = record.values.get("pressure_kpa")
                    if p is not None:
                        done = inflations.add(time_ns, p, record.values.get("volume_ml"))
                        if done is not None:
                            lines.extend(self._inflation(done))
            elif type(record) is Event:
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
                lines.append(self._emit_event(record.code, record.detail, record.value, time_ns))
            elif type(record) is DeviceInfo:
                self._identity(record)
        if gap is not None:
            lines.append(self._gap(gap, rx_time_ns))
        if lines:
            self._sink(lines)

    def _observe_last_sample(self, records: list[Record]) -> None:
        """Let the clock see the chunk's tightest bound first (see ``DeviceClock.observe``)."""
        last = next((r for r in reversed(records) if type(r) is Sample), None)
        if last is not None and last.device_time_us is not None:
            self.clock.observe(last.device_time_us, last.rx_time_ns)

    def _inflation(self, inflation: Inflation) -> list[str]:
        """Its ``pv_inflation`` point, at its start; and a ``burst`` event, at the collapse."""
        prefix = series_prefix("pv_inflation", self._event_tags)
        lines = [encode_line(prefix, inflation_fields(inflation), inflation.start_ns)]
        if inflation.burst and inflation.burst_ns is not None:
            atm = kpa_to_atm(inflation.peak_kpa)
            volume = inflation.volume_at_peak_ml
            detail = (
                f"burst at {atm:.2f} atm"
                + ("" if volume is None else f", {volume:.3f} mL")
                + f" (inflation {inflation.cycle})"
            )
            log.warning("%s: %s", self.device.name, detail)
            lines.append(self._emit_event("burst", detail, inflation.peak_kpa, inflation.burst_ns))
        return lines

    def _gap(self, gap: Event, time_ns: int) -> str:
        lost = int(gap.value or 0)
        self.gaps += 1
        self.lost_samples += lost
        return self._emit_event("gap", gap.detail, float(lost), time_ns)

    def _emit_event(self, code: str, detail: str, value: float | None, time_ns: int) -> str:
        """An event for the live stream and the recording; its line for InfluxDB."""
        if self.live is not None:
            self.live.add_event(code, detail, value, time_ns)
        if self.recording is not None:
            self.recording.add_event(code, detail, value, time_ns)
        return self._event_line(code, detail, value, time_ns)

    def _identity(self, info: DeviceInfo) -> None:
        """Log and record the identity when it is new or changed (it repeats every 10 s)."""
        old = self.identity
        if old is None or (info.model, info.serial, info.firmware, info.extra) != (
            old.model,
            old.serial,
            old.firmware,
            old.extra,
        ):
            log.info(
                "%s: %s serial %s firmware %s %s",
                self.device.name,
                info.model,
                info.serial,
                info.firmware,
                info.extra,
            )
            detail = f"model={info.model} serial={info.serial} firmware={info.firmware}"
            self._sink([self._emit_event("identity", detail, None, info.rx_time_ns)])
        self.identity = info

    def _event_line(self, code: str, detail: str, value: float | None, time_ns: int) -> str:
        prefix = series_prefix("pv_event", {**self._event_tags, "code": code})
        fields = {"detail": detail, "value": None if value is None else float(value)}
        return encode_line(prefix, fields, time_ns)

    def event(self, code: str, detail: str, value: float | None) -> None:
        """Record a pvlog-side event for this device (port lost, restored, outbox full...)."""
        self._sink([self._emit_event(code, detail, value, time.time_ns())])

    def health(self) -> dict[str, int]:
        counts = {
            "samples": self.samples,
            "gaps": self.gaps,
            "lost_samples": self.lost_samples,
            "port_outages": self.port_outages,
            "online": int(self.online),
            "stalled": int(self.stalled_since is not None),
            "stalls": self.stalls,
            "dropped": sum(v for k, v in self.parser.dropped.items() if k != "garbage_bytes"),
            "bytes_read": self.bytes_read,
        }
        counts.update({f"dropped_{k}": v for k, v in self.parser.dropped.items()})
        if self.recording is not None:
            counts["recording_failing"] = int(self.recording.failed)
            counts["recording_dropped"] = self.recording.dropped
        return counts

    def health_line(self, time_ns: int) -> str:
        return encode_line(
            series_prefix("pvlog_health", {"device": self.device.name}), self.health(), time_ns
        )


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
