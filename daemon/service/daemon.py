"""The daemon: the wiring of every device's pipeline, and its loops in one TaskGroup.

Per device: an ``Acquisition`` whose chunks go to its sinks (InfluxDB lines into the
batcher, the live stream, the recording, the inflation detector). Beside them: the
batcher, the writer (or the edge forwarder), the health reporter, the recordings'
flush, session control. Each unit keeps its own logic and tests; here is only who
feeds whom, and the order of an orderly stop.

Stop order (SIGTERM/SIGINT): stop reading every port, add the session's stop
point, commit everything in memory to the outbox, then let the writer drain the
outbox for up to ``outbox.drain_timeout_s``. Nothing is lost either way: what
InfluxDB did not take yet stays in the outbox and goes out on the next start. Lines
the outbox cannot take (its disk full) are handed to the writer, which sends them
straight on within the same time; only what neither took is lost, said in the stop
line and, through the run marker, in the next start's log, events and health.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import time
from collections.abc import Coroutine
from typing import Any

from daemon.acquisition.device import Acquisition
from daemon.acquisition.flow import Flow
from daemon.acquisition.inflation_sink import InflationSink
from daemon.acquisition.inflations import InflationDetector
from daemon.acquisition.status import DeviceStatus
from daemon.backoff import within
from daemon.config import Config, DeviceConfig
from daemon.influx import schema
from daemon.influx.connect import influx_client
from daemon.influx.sink import InfluxSink
from daemon.influx.writer import InfluxWriter
from daemon.journal.keeping import Journals
from daemon.mqtt.edge import EdgeForwarder
from daemon.mqtt.live import LiveStream
from daemon.outbox.batcher import Batcher
from daemon.outbox.factory import open_async_outbox, open_outbox
from daemon.outbox.sender import Sender
from daemon.recordings.writer import FLUSH_S, DeviceRecording
from daemon.service.auditing import DAEMON, DaemonAudit
from daemon.service.ending import stop_by_itself
from daemon.service.file_metadata import device_metadata
from daemon.service.health import HEALTH_INTERVAL_S, HealthReporter, read_depth
from daemon.service.manifests import ManifestWriter, RecordedDevice
from daemon.service.operations import Operations
from daemon.service.rescue import recover_runs
from daemon.service.run_marker import RunMarker, last_run_news
from daemon.service.stop_line import counts, say_evicted_late, say_stopped
from daemon.sessions.book import SessionBook, Transition
from daemon.sessions.control import Command, SessionControl
from daemon.version import pvlog_version
from daemon.web.view import DeviceView

log = logging.getLogger(__name__)

LIVE_STOP_TIMEOUT_S = 2.0


class Daemon:
    def __init__(self, config: Config, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stop = asyncio.Event()
        self.host = socket.gethostname()
        self.book = SessionBook(config.session.name, time.time_ns())
        self.broker = config.mqtt.broker()
        """The MQTT settings, with the password (from the environment or a file) read once."""
        self.outbox = open_async_outbox(config.outbox)
        self.batcher = Batcher(
            self.outbox,
            batch_size=config.influx.batch_size,
            flush_interval_s=config.influx.flush_interval_ms / 1000,
        )
        self.writer: Sender
        if config.live_enabled and config.mqtt.mode == "edge":
            self.writer = EdgeForwarder(
                open_outbox(config.outbox),
                self.batcher.committed,
                broker=self.broker,
                topic_prefix=config.mqtt.topic_prefix,
                edge=config.mqtt.edge(),
                ack_timeout_s=config.mqtt.ack_timeout_s,
            )
        else:
            self.writer = InfluxWriter(
                open_outbox(config.outbox),
                influx_client(config.influx),
                self.batcher.committed,
                batch_size=config.influx.batch_size,
            )
        key = config.audit.key()
        self.audit = DaemonAudit(config.audit_path, self.host, self.batcher.extend, key,
                                 config.audit.head_every_s)  # fmt: skip
        self._why = "requested"
        self.flow = Flow()
        self.flow.add(self.batcher.fill)
        self.live: list[LiveStream] = []
        self.recordings: list[DeviceRecording] = []
        self.inflation_sinks: list[InflationSink] = []
        self.views: list[DeviceView] = []
        self.journals = Journals.of(config, self.book.run, self.book.started_ns, self.batcher.kept)
        self.devices = [self._device(d) for d in config.device]
        self.health = HealthReporter(
            [(d.status, d.event) for d in self.devices],
            self.outbox.outbox,
            self.batcher,
            self.writer,
            config.recording_enabled,
            self.host,
            on_loss=self.audit.loss,
        )
        self.manifests = ManifestWriter(
            config,
            self.book,
            [
                RecordedDevice(d.status, r)
                for d, r in zip(self.devices, self.recordings, strict=True)
            ]
            if config.recording_enabled
            else [],
            self.host,
            pvlog_version(),
            audit=self.audit,
            key=key,
        )
        self._marker = RunMarker(config.outbox.path, self.book.run, self.book.started_ns)
        self._failed: list[str] = []

    @property
    def session(self) -> str:
        return self.book.current

    def _device(self, device: DeviceConfig) -> Acquisition:
        """One device's pipeline: acquisition, then every sink the configuration asks for."""
        session = self.book.state
        journal = self.journals.open(device.name, session, self._metadata(device))
        acq = Acquisition(device, on_state=self._state_changed, flow=self.flow, journal=journal)
        if self.audit.enabled:
            acq.add_sink(self.audit.identity_sink(device.name, session))
        acq.add_sink(InfluxSink(device.name, session, self.batcher.extend,
                                static_tags=self.config.session.tags,
                                marked=self.batcher.extend_marked))  # fmt: skip
        if self.config.live_enabled:
            live = LiveStream(
                self.broker, self.config.mqtt.topic_prefix, acq.status, session, host=self.host
            )
            acq.add_sink(live)
            self.live.append(live)
        if self.config.recording_enabled:
            recording = self._recording(device, acq)
            acq.status.recording = recording
            acq.add_sink(recording)
            self.recordings.append(recording)
            self.journals.recorded_by(device.name, lambda: recording.kept_mark)
            self.flow.add(recording.fill)
        inflation = self.config.inflation
        detector = None
        if inflation.enabled:
            detector = InflationDetector(
                threshold_atm=inflation.threshold_atm, baseline_atm=inflation.baseline_atm
            )
            sink = InflationSink(device.name, detector, acq.emit, session, self.config.session.tags)
            acq.add_sink(sink)
            self.inflation_sinks.append(sink)
        if self.config.http_enabled:  # the live page's picture, after the inflations
            view = DeviceView(acq.status, session, detector)
            acq.add_sink(view)
            self.views.append(view)
        return acq

    def _recording(self, device: DeviceConfig, acq: Acquisition) -> DeviceRecording:
        return DeviceRecording(
            self.config.recording.dir,
            device.name,
            self.book.state,
            metadata=self._metadata(device),
            max_file_bytes=self.config.recording.max_file_bytes,
            on_event=acq.event,
            on_file=functools.partial(self.audit.recording_file, device.name),
        )

    def _metadata(self, device: DeviceConfig) -> dict[str, str]:
        return device_metadata(device, self.host, self.book.run, self.config.session.tags)

    def _state_changed(self, status: DeviceStatus) -> None:
        """A device's new state goes into ``pvlog_health`` at once, not at the next report."""
        self.batcher.extend(
            [schema.device_health_line(status.name, status.health(), time.time_ns(), self.host)]
        )

    # -- the run -----------------------------------------------------------------

    async def run(self, *, duration_s: float | None = None, until_ports_end: bool = False) -> bool:
        """Run until SIGTERM/SIGINT (or ``duration_s``, or every port has ended); False
        if the batcher or the writer failed first."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig)
        log.info("pvlog %s: session %s, %d device(s), InfluxDB %s", pvlog_version(),
                 self.session, len(self.devices), self.config.influx.url)  # fmt: skip
        self.audit.started(loop, self.config, self.config_path, self.book.run)
        self.audit.sessions([self.book.start()], DAEMON, self.book.run)
        self._sessions([self.book.start()])
        # Before recording anything: the journals left, and the killed run's manifests.
        await recover_runs(self.config, self.book.run, self.audit, self._marker.last_run(),
                           self.manifests)  # fmt: skip
        self.journals.start()
        self._check_last_run()
        ops = Operations(self.config, devices=[d.status for d in self.devices],
                         outbox=self.outbox, batcher=self.batcher, writer=self.writer,
                         live=self.live, views=self.views, book=self.book,
                         control=self.session_command)  # fmt: skip
        try:
            await ops.start()  # an address that cannot be bound stops the start here
        except OSError:
            await asyncio.to_thread(self.audit.stopped, self.book.run, "could not start", {}, {})
            raise
        writer_stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            batcher = tg.create_task(self._vital("batcher", self.batcher.run()))
            writer = tg.create_task(
                self._vital(
                    "writer", self.writer.run(writer_stop, self.config.outbox.drain_timeout_s)
                )
            )
            readers = [
                tg.create_task(d.run(self.stop), name=f"device {d.device.name}")
                for d in self.devices
            ]
            loops = [
                tg.create_task(self._health_loop(), name="health"),
                tg.create_task(self._flush_loop(), name="recordings"),
            ]
            if duration_s is not None or until_ports_end:
                ending = stop_by_itself(self.stop, lambda why: self.request_stop(why=why),
                                        [d.status for d in self.devices], duration_s,
                                        until_ports_end=until_ports_end)  # fmt: skip
                loops.append(tg.create_task(ending, name="end"))
            live = [tg.create_task(s.run(self.stop), name=f"live {s.device}") for s in self.live]
            if self.config.live_enabled:
                control = SessionControl(
                    self.broker, self.config.mqtt.topic_prefix, self.host, self.session_command
                )
                live.append(tg.create_task(control.run(self.stop), name="session control"))
            notifying = tg.create_task(ops.run(), name="systemd")
            await self.stop.wait()
            ops.stopping()
            for task in loops:
                task.cancel()
            await asyncio.gather(*readers, *loops, return_exceptions=True)
            stops = self.book.stop_all(time.time_ns())
            self.audit.sessions(stops, f"daemon stop ({self._why})", self.book.run)
            for sink in self.inflation_sinks:
                sink.finish()  # an inflation under way is the data's last: cut, and said
            await self._finish_recordings()
            await within(LIVE_STOP_TIMEOUT_S, live)  # each says offline, if the broker lets it
            if not batcher.done():
                self.batcher.extend(self.health.lines(await read_depth(self.outbox)))
                self._sessions(stops)
                # The trail's end as InfluxDB last sees it, signed; from now on what the
                # trail gets is in its file only (the head file witnesses it).
                await asyncio.to_thread(self.audit.witness, "stop")
                self.audit.detach()
                self.batcher.close()
                await batcher
            uncommitted = self.batcher.take_uncommitted()
            if uncommitted:
                log.warning(
                    "the outbox cannot take the last %d lines: sending them straight on",
                    len(uncommitted),
                )
                self.writer.hand_over(uncommitted)
            writer_stop.set()
            await writer
            self.journals.close(
                all_kept=not uncommitted and not any(r.unwritten for r in self.recordings)
            )
            notifying.cancel()
        await ops.close()
        await self._close(len(uncommitted))
        return not self._failed

    async def _vital(self, what: str, work: Coroutine[Any, Any, None]) -> None:
        """The batcher and the writer run until told to stop: one that ends earlier has
        failed, and a logger that cannot keep what it reads must not go on reading as
        if it could. It stops the daemon (in order), never the TaskGroup."""
        try:
            await work
            if self.stop.is_set():
                return
            exc: BaseException | None = None
        except Exception as e:
            exc = e
        self._failed.append(what)
        log.critical("%s failed, stopping: %r", what, exc, exc_info=exc)
        self.request_stop()

    # The two loops run until cancelled at the stop; a plain sleep wakes the loop once
    # a period (a wait a stop could cut short costs a task and three wake-ups).

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            self.batcher.extend(self.health.lines(await read_depth(self.outbox)))

    async def _flush_loop(self) -> None:  # and, as often, each device's share of drops
        while True:
            await asyncio.sleep(FLUSH_S)
            for rec in self.recordings:
                rec.flush()
            self.journals.release()
            for d in self.devices:
                d.check_drops(time.monotonic())

    async def _finish_recordings(self) -> None:
        await self.manifests.settle()
        await asyncio.gather(
            *(asyncio.wrap_future(r.finish()) for r in self.recordings), return_exceptions=True
        )
        for r in self.recordings:
            r.flush()  # what the last writes said (``recording_lost``), on the loop
        if self.config.recording_enabled:
            await self.manifests.write(list(self.book.stretches), complete=True)

    async def _close(self, uncommitted: int) -> None:
        depth = await self.outbox.depth()
        await self.outbox.close()
        lost = self.writer.unsent_lines
        self._marker.stopped(lost)
        self.writer.close()
        for d in self.devices:
            log.info("%s: %s", d.device.name, counts(d.status.health()))
        # The last commits may evict too, after the last report: said in the stop line.
        late = self.outbox.outbox.evicted_lines - self.health.losses.evicted
        say_evicted_late(late, self.config.outbox.max_bytes, self.config.recording_enabled)
        say_stopped(self.writer, self.config.outbox.path, depth.lines, uncommitted, lost)
        lost_lines = {"unsent": lost, "evicted_at_stop": max(0, late)}
        samples = {d.device.name: d.status.samples for d in self.devices}
        await asyncio.to_thread(self.audit.stopped, self.book.run, self._why, lost_lines, samples)

    def _check_last_run(self) -> None:
        """Say how the last run on this outbox ended, if not cleanly and whole; then mark
        this run as running."""
        last = self._marker.last_run()
        news = last_run_news(last, self.config.influx.flush_interval_ms)
        if news is not None:
            code, detail, value = news
            log.warning("%s", detail)
            for d in self.devices:
                d.event(code, detail, value)
            if code == "lost_at_stop":
                self.health.lost_at_last_stop = int(value)
        self._marker.running(self.session)

    def request_stop(self, sig: signal.Signals | None = None, *, why: str = "requested") -> None:
        if not self.stop.is_set():
            self._why = sig.name if sig else why
            log.info("stopping (%s)", self._why)
        self.stop.set()

    # -- sessions ----------------------------------------------------------------

    def session_command(self, command: Command) -> str:
        """Start or stop a session (over MQTT, or from the page); returns the session now
        in force."""
        transitions = self.book.command(command, time.time_ns())
        self.audit.sessions(transitions, command.by or "who not said", self.book.run)
        self._sessions(transitions)
        for device in self.devices:
            device.identity_again()
        if command.action == "stop":
            log.info("session stopped; back to %s", self.session)
        else:
            log.info("session %s started: %s", command.name, command.tags)
        return self.session

    def _sessions(self, transitions: list[Transition]) -> None:
        """Each start or stop: its ``pv_session`` point, and its manifest."""
        for t in transitions:
            devices = [d.device.name for d in self.devices]
            tags = {**self.config.session.tags, **t.tags}
            fields = schema.session_fields(t.state, self.host, devices, tags)
            self.batcher.extend([schema.session_line(t.session, fields, t.time_ns, self.book.run)])
            if self.stop.is_set():
                continue  # the stop writes every manifest itself, complete
            self.manifests.schedule(t.session, complete=t.state == "stop")
            if t.state == "stop" and self.session == self.book.base != t.session:
                self.manifests.schedule(self.session, complete=False)  # the run's resumes
