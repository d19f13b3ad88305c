"""What ``/metrics`` and ``/healthz`` say, read from the daemon's own state at each scrape.

Nothing is counted twice: each device's status, the outbox, the batcher and the
writer already keep every figure (``pvlog_health`` reads the same ones), so a scrape
reads them through a prometheus_client collector instead of mirroring them into
metric objects on the sample path. Only the write latency is a histogram, which the
writer observes once per request. The operations listener's own figures (its
connections, the limits it enforced, malformed requests) are read the same way, from
where the listener keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.acquisition.status import DeviceStatus
from daemon.mqtt.live import LiveStream
from daemon.outbox.batcher import Batcher
from daemon.outbox.sender import Sender
from daemon.outbox.store import Depth, Outbox
from daemon.service.http_limits import Connections
from daemon.web.events import Streams


@dataclass(eq=False)  # registered by identity in a CollectorRegistry
class DaemonMetrics(Collector):
    devices: Sequence[DeviceStatus]
    outbox: Outbox
    batcher: Batcher
    writer: Sender
    live: Sequence[LiveStream] = ()
    depth: Depth | None = field(default=None)
    """The outbox's depth, read (off the loop) just before the scrape."""

    def collect(self) -> Iterator[Metric]:
        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=["device"])

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=["device"])

        samples = counter("pvlog_samples", "samples decoded and handed to the sinks")
        gaps = counter("pvlog_gaps", "breaks in the device's seq: samples lost on the line")
        lost = counter("pvlog_lost_samples", "samples the gaps lost, by their seq")
        outages = counter("pvlog_port_outages", "times the port was lost")
        online = gauge("pvlog_device_online", "1 while the port is open")
        stalled = gauge("pvlog_device_stalled", "1 while the port is open but silent")
        failing = gauge("pvlog_recording_failing", "1 while the recording cannot write")
        dropped = CounterMetricFamily(
            "pvlog_dropped",
            "frames the driver dropped, by reason (garbage_bytes: bytes)",
            labels=["device", "reason"],
        )
        for s in self.devices:
            samples.add_metric([s.name], s.samples)
            gaps.add_metric([s.name], s.gaps)
            lost.add_metric([s.name], s.lost_samples)
            outages.add_metric([s.name], s.port_outages)
            online.add_metric([s.name], int(s.online))
            stalled.add_metric([s.name], int(s.stalled_since is not None))
            if s.recording is not None:
                failing.add_metric([s.name], int(s.recording.failed))
            for reason, n in s.dropped.items():
                dropped.add_metric([s.name, reason], n)
        yield from (samples, dropped, gaps, lost, outages, online, stalled, failing)
        yield from self._outbox()
        yield from self._writer()

    def _outbox(self) -> Iterator[Metric]:
        if self.depth is not None:
            yield GaugeMetricFamily(
                "pvlog_outbox_lines", "lines waiting for InfluxDB", value=self.depth.lines
            )
            yield GaugeMetricFamily(
                "pvlog_outbox_bytes", "the bodies waiting, bytes", value=self.depth.bytes
            )
            yield GaugeMetricFamily(
                "pvlog_outbox_dead_letters", "batches refused", value=self.depth.dead_letters
            )
        yield CounterMetricFamily(
            "pvlog_outbox_evicted_lines",
            "lines evicted unsent, the outbox over max_bytes",
            value=self.outbox.evicted_lines,
        )
        yield CounterMetricFamily(
            "pvlog_outbox_commit_failures",
            "commits the outbox could not take (disk full?)",
            value=self.batcher.commit_failures,
        )

    def _writer(self) -> Iterator[Metric]:
        yield from self.writer.metrics()
        if self.live:
            yield GaugeMetricFamily(
                "pvlog_mqtt_connected",
                "1 while every device's live stream is connected to the broker",
                value=int(all(s.connected for s in self.live)),
            )

    def unhealthy(self) -> str | None:
        """Why the daemon is not healthy (a device not online, or the outbox not taking
        commits), or None."""
        for s in self.devices:
            if s.state != "online":
                return f"device {s.name} {s.state}" + (f": {s.reason}" if s.reason else "")
        if self.batcher.failing:
            return "the outbox cannot take commits (disk full?)"
        return None

    def degraded(self) -> str | None:
        """A device that reads but drops too much of what it reads (None: none does)."""
        for s in self.devices:
            if s.degraded is not None:
                return f"device {s.name} degraded: {s.degraded}"
        return None


@dataclass(eq=False)  # registered by identity in a CollectorRegistry
class ListenerMetrics(Collector):
    """The operations listener's connections and what its limits did
    (``daemon.service.http_limits``, ``daemon.web.events``)."""

    connections: Connections
    streams: Streams | None = None

    def collect(self) -> Iterator[Metric]:
        c = self.connections
        yield GaugeMetricFamily("pvlog_http_connections", "connections open now", value=c.open)
        yield CounterMetricFamily(
            "pvlog_http_connections_refused",
            "connections closed at once, the listener holding all it may",
            value=c.refused,
        )
        yield CounterMetricFamily(
            "pvlog_http_head_timeouts",
            "connections closed before a whole request head came",
            value=c.head_timeouts,
        )
        yield CounterMetricFamily(
            "pvlog_http_bad_requests",
            "malformed requests refused (bad request line or headers, not HTTP)",
            value=c.bad_requests.total,
        )
        if self.streams is not None:
            s = self.streams
            yield GaugeMetricFamily(
                "pvlog_http_event_streams", "live pages' feeds open now", value=s.open
            )
            yield CounterMetricFamily(
                "pvlog_http_event_streams_refused",
                "feeds refused, as many open as may be",
                value=s.refused,
            )
            yield CounterMetricFamily(
                "pvlog_http_event_streams_dropped",
                "feeds closed for what their page left unread",
                value=s.dropped,
            )
