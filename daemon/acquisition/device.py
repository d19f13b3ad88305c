"""One device: its port, supervised; each read stamped and handed to the device's sinks.

Each device runs as its own task with its own port, driver and clock, so one device's
fault or silence never holds up another's samples. The port is reopened with capped
backoff whenever it fails or vanishes; the outage becomes an event. Each read goes to
the device's journal before anything parses it (``daemon.journal``), so a kill loses
nothing read; what it becomes is one ``Chunk`` for every sink (``daemon.pipeline``):
the InfluxDB lines, the live stream, the recording and the inflation detector all take
it the same way.
A device that is asked (its driver declares writes: a Modbus instrument, a polled
ASCII one) has a poll loop beside the reader (``daemon.acquisition.polling``); each
request it sends goes to the sinks too, as a chunk's ``written``, for the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import cast

from daemon.acquisition.drop_watch import DropWatch
from daemon.acquisition.opening import CLOSE_TIMEOUT_S, Opener
from daemon.acquisition.polling import poll
from daemon.acquisition.stamping import Stamper, identity_event
from daemon.acquisition.status import DeviceStatus
from daemon.backoff import first_of, supervise
from daemon.config import DeviceConfig
from daemon.journal.keeper import Journal
from daemon.journal.polled import JournaledPoll
from daemon.pipeline import Chunk, Samples, Sink, StampedEvent, events_only
from drivers import registry
from drivers.port import FlowControl, PortError, SerialPort
from drivers.records import Record
from drivers.registry import Polled
from drivers.units import LAB_UNITS

log = logging.getLogger(__name__)

REOPEN_FIRST_S = 0.05
REOPEN_CAP_S = 0.5
"""A returning port is read again within half a second (retrying a missing path costs
nothing: one failed open)."""
STOP_CLOSE_S = 1.0
"""At the stop, how long a port's close may hold it: one that hangs is left to its thread."""


class Acquisition:
    """Reads one device for as long as the daemon runs."""

    def __init__(
        self,
        device: DeviceConfig,
        sinks: Iterable[Sink] = (),
        *,
        on_state: Callable[[DeviceStatus], None] | None = None,
        flow: FlowControl | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.device = device
        spec = registry.driver(device.driver)
        self.parser = spec.parser(device.options())
        asks = bool(self.parser.allowed_writes)  # a driver that declares writes asks
        self._polled = cast(Polled, self.parser) if asks else None
        self._units_said = 0
        self.drops = DropWatch(device.max_drop_share)
        self._answered = asyncio.Event() if asks else None
        """Set when a polled device's answer is in (``daemon.acquisition.polling``)."""
        self.status = DeviceStatus(device.name, device.driver, device.port)
        self.status.dropped = self.parser.dropped
        self.sinks: list[Sink] = list(sinks)
        self.stamper = Stamper(round(device.latency_ms * 1e6))
        self._on_state = on_state
        self._emitting = False
        self._later: deque[Chunk] = deque()
        self._last_rx = time.monotonic()
        self.port: SerialPort | None = None
        self._opener = Opener(device.name)
        self.flow = flow
        """Back-pressure: the port pauses while the pipeline is full (a flood)."""
        self.journal = journal
        """Where each read goes before it is parsed (``daemon.journal``)."""
        self._asker: JournaledPoll | None = None
        if journal is not None:
            journal.start(lambda: pickle.dumps((self.parser, self.stamper)))
            if self._polled is not None:
                self._asker = JournaledPoll(self._polled, journal)

    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, chunk: Chunk) -> None:
        """Every sink takes ``chunk``; one a sink emits meanwhile (an inflation the
        detector completed) follows once every sink has this one."""
        if self._emitting:
            self._later.append(chunk)  # called from a sink: delivered below, in turn
            return
        self._emitting = True
        try:
            for sink in self.sinks:
                sink.take(chunk)
            while self._later:
                later = self._later.popleft()
                for sink in self.sinks:
                    sink.take(later)
        finally:
            self._emitting = False

    def event(self, code: str, detail: str, value: float | None) -> None:
        """A pvlog-side event for this device (port lost, outbox full...), stamped now."""
        self.emit(events_only(StampedEvent(time.time_ns(), code, detail, value)))

    def check_drops(self, now_s: float) -> None:
        """Said once when the device starts dropping more than ``max_drop_share`` of
        what it sends (a warning, an event, its status), and once when it stops."""
        status = self.status
        change = self.drops.check(now_s, status.samples, status.dropped)
        if change is None:
            return
        status.degraded = self.drops.degraded
        if change == "degraded":
            example = getattr(self.parser, "examples", {}).get(self.drops.top, b"")
            said = f"; e.g. {example!r}" if example else ""
            log.warning("%s: degraded: %s%s", self.device.name, status.degraded, said)
            self.event("drops_high", f"{status.degraded}{said}", None)
        else:
            log.info("%s: drops back under %.0f%%", self.device.name, 100 * self.drops.share)
            self.event("drops_normal", "drops back under the device's max_drop_share", None)

    def identity_again(self) -> None:
        """A session began: the device's last known identity, said again into it, so its
        records (``pv_event``, its recording) name the device though it said so earlier."""
        info = self.stamper.identity
        if info is not None:
            self.emit(events_only(identity_event(info, time.time_ns())))

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop``; a failure of this device never ends the task."""
        await supervise(
            lambda: self._open_and_read(stop),
            stop,
            what=self.device.name,
            log=log,
            retry_on=(PortError,),
            failure="port unavailable",
            first_s=REOPEN_FIRST_S,
            cap_s=REOPEN_CAP_S,
            cancel_on_stop=False,
        )

    async def _open_and_read(self, stop: asyncio.Event) -> None:
        """Open the port (raises ``PortError``), then read until it is lost or ``stop``."""
        device, status = self.device, self.status
        port = SerialPort(
            device.port,
            baudrate=device.baudrate,
            allowed_writes=self.parser.allowed_writes,
            read_interval_s=device.read_interval_ms / 1000,
            flow=self.flow,
        )
        try:
            if not await self._opener.open(port, stop):  # off the loop (``opening``)
                return
        except PortError:
            if status.state == "starting":  # never opened: offline from the first try
                self._state("offline", "port_unavailable")
            raise
        if status.port_outages:
            log.info("%s: %s is back", device.name, device.port)
            self.event("port_restored", f"{device.port} reopened", None)
        status.online = True
        self._state("online")
        log.info("%s: reading %s (%s)", device.name, device.port, device.driver)
        why = await self._read(port, stop)
        if stop.is_set():
            return
        status.port_outages += 1
        status.online = False
        status.stalled_since = None
        log.warning("%s: lost %s: %s", device.name, device.port, why)
        self.event("port_lost", f"{device.port}: {why}", None)
        self._state("offline", "port_lost")

    async def _read(self, port: SerialPort, stop: asyncio.Event) -> str:
        """Read ``port`` until it is lost (returns why) or ``stop``; always closes it."""
        self.port = port
        self._last_rx = time.monotonic()
        watchdog = asyncio.create_task(self._watch_for_stall())
        asking: asyncio.Task[None] | None = None
        try:
            port.start(self._on_chunk)
            assert port.lost is not None
            lost = port.lost
            if self._answered is not None:
                asking = asyncio.create_task(self._poll(port, stop))
            await first_of(lost, stop.wait())
            if lost.done():
                return str(lost.result())
            port.read_pending()
            return "stopping"
        finally:
            watchdog.cancel()
            if asking is not None:
                asking.cancel()
                with contextlib.suppress(asyncio.CancelledError, PortError):
                    await asking
            self.port = None
            await self._opener.close(port, STOP_CLOSE_S if stop.is_set() else CLOSE_TIMEOUT_S)

    async def _poll(self, port: SerialPort, stop: asyncio.Event) -> None:
        """Ask a polled device (``daemon.acquisition.polling``); a write that fails
        means the port is going, which the read side says."""
        assert self._polled is not None
        assert self._answered is not None
        d = self.device
        try:
            asker = cast(Polled, self._asker) if self._asker is not None else self._polled
            await poll(asker, lambda request: self._send(port, request),
                       self._answered, self._cycle,
                       interval_s=d.poll_interval_ms / 1000, timeout_s=d.timeout_ms / 1000,
                       retries=d.retries, stop=stop)  # fmt: skip
        except PortError as exc:
            log.warning("%s: cannot ask %s: %s", d.name, d.port, exc)

    def _send(self, port: SerialPort, request: bytes) -> None:
        """A declared request to the device, and into the recording as sent."""
        port.write(request)
        asker = self._asker
        if asker is None:
            self.emit(Chunk(b"", time.time_ns(), Samples(), [], [], request))
        else:  # as the journal has it
            self.emit(Chunk(b"", asker.sent_ns, Samples(), [], [], request, mark=asker.sent_mark))

    def _cycle(self, time_ns: int, records: list[Record]) -> None:
        mark = 0
        if self._asker is not None:  # as the journal has it
            time_ns, mark = self._asker.cycle_ns, self._asker.cycle_mark
        if records:
            self._deliver(b"", time_ns, records, rebooted=False, mark=mark)

    async def _watch_for_stall(self) -> None:
        """An open port silent for ``stall_timeout_s`` is a stalled device: said once."""
        timeout = self.device.stall_timeout_s
        if not timeout:
            return
        status = self.status
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            silent = time.monotonic() - self._last_rx
            if silent >= timeout and status.stalled_since is None:
                status.stalled_since = self._last_rx
                status.stalls += 1
                log.warning("%s: no bytes for %.1f s: stalled", self.device.name, silent)
                self.event("stalled", f"{self.device.port}: no bytes for {silent:.1f} s", None)
                self._state("stalled", "silent")

    def _resumed(self) -> None:
        assert self.status.stalled_since is not None
        silent = time.monotonic() - self.status.stalled_since
        self.status.stalled_since = None
        log.info("%s: bytes again after %.1f s", self.device.name, silent)
        self.event("resumed", f"{self.device.port}: bytes again after {silent:.1f} s", silent)
        self._state("online")

    def _state(self, state: str, reason: str = "") -> None:
        self.status.state, self.status.reason = state, reason
        if self._on_state is not None:
            self._on_state(self.status)

    def _on_chunk(self, data: bytes, rx_time_ns: int) -> None:
        mark = 0 if self.journal is None else self.journal.read(rx_time_ns, data)  # first
        status = self.status
        status.bytes_read += len(data)
        self._last_rx = time.monotonic()
        if status.stalled_since is not None:
            self._resumed()
        parser = self.parser
        boots = parser.boots
        records = parser.feed(data, rx_time_ns)
        units: list[str] | None = getattr(parser, "unknown_units", None)
        if units and len(units) > self._units_said:
            self._say_units(units)
        if self._polled is not None and not self._polled.awaiting:
            assert self._answered is not None
            self._answered.set()
        self._deliver(data, rx_time_ns, records, rebooted=parser.boots != boots, mark=mark)

    def _say_units(self, units: list[str]) -> None:
        """Each unit a line named that pvlog does not know, once: its lines are dropped."""
        for unit in units[self._units_said :]:
            log.warning(
                "%s: a line names the unit %r, which pvlog does not know as a pressure "
                "unit: such lines are dropped (bad_value); known: %s",
                self.device.name, unit, ", ".join(LAB_UNITS),
            )  # fmt: skip
        self._units_said = len(units)

    def _deliver(self, data: bytes, rx_time_ns: int, records: list[Record], *,
                 rebooted: bool, mark: int = 0) -> None:  # fmt: skip
        status = self.status
        chunk = self.stamper.stamp(data, rx_time_ns, records, rebooted=rebooted, mark=mark)
        status.samples += len(chunk.samples)
        for event in chunk.events:
            if event.code == "gap":
                status.gaps += 1
                status.lost_samples += int(event.value or 0)
            elif event.code == "identity" and self.stamper.identity is not None:
                log.info("%s: %s %s", self.device.name, event.detail, self.stamper.identity.extra)
        status.identity = self.stamper.identity
        self.emit(chunk)
