"""The daemon: every device's acquisition, the batcher, the writer, and an orderly stop.

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
import logging
import signal
import socket
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from daemon.acquisition.device import Acquisition
from daemon.config import Config, DeviceConfig
from daemon.influx.lineprotocol import encode_line, series_prefix
from daemon.influx.v1 import influx_client
from daemon.influx.writer import InfluxWriter
from daemon.mqtt.edge import EdgeForwarder
from daemon.mqtt.live import LiveStream
from daemon.outbox.batcher import Batcher
from daemon.outbox.store import AsyncOutbox, Outbox
from daemon.recordings import manifest
from daemon.recordings.writer import FLUSH_S, DeviceRecording
from daemon.service.run_marker import RunMarker
from daemon.sessions.control import Command, CommandError, SessionControl

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 10.0
LIVE_STOP_TIMEOUT_S = 2.0


def pvlog_version() -> str:
    try:
        return version("pvlog")
    except PackageNotFoundError:
        return "unknown"


def session_name(configured: str, now_ns: int) -> str:
    """``auto`` becomes the UTC start time, e.g. ``20261123T201553Z``: sortable, one per start."""
    if configured != "auto":
        return configured
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns / 1e9))


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop = asyncio.Event()
        self.started_ns = time.time_ns()
        self.session = session_name(config.session.name, self.started_ns)
        self.base_session = self.session
        """The session of the whole run; sessions started over MQTT come and go within it."""
        self.session_tags: dict[str, str] = {}
        self.broker = config.mqtt.broker()
        """The MQTT settings, with the password (from the environment or a file) read once."""
        self.outbox = AsyncOutbox(Outbox(config.outbox.path, max_bytes=config.outbox.max_bytes))
        self.batcher = Batcher(
            self.outbox,
            batch_size=config.influx.batch_size,
            flush_interval_s=config.influx.flush_interval_ms / 1000,
        )
        influx = config.influx
        self.writer: InfluxWriter | EdgeForwarder
        if config.live_enabled and config.mqtt.mode == "edge":
            self.writer = EdgeForwarder(
                Outbox(config.outbox.path),
                self.batcher.committed,
                broker=self.broker,
                topic_prefix=config.mqtt.topic_prefix,
                edge=config.mqtt.edge(),
                ack_timeout_s=config.mqtt.ack_timeout_s,
            )
        else:
            self.writer = InfluxWriter(
                Outbox(config.outbox.path),
                influx_client(influx),
                self.batcher.committed,
                batch_size=influx.batch_size,
            )
        self.devices = [
            Acquisition(
                d,
                session=self.session,
                static_tags=config.session.tags,
                sink=self.batcher.extend,
                live=self._live(d) if config.live_enabled else None,
                recording=self._recording(d) if config.recording_enabled else None,
                inflation=config.inflation,
            )
            for d in config.device
        ]
        for acq in self.devices:
            if acq.live is not None:
                acq.live.set_counters(acq.health)
        self.host = socket.gethostname()
        self._intervals: dict[str, list[list[int | None]]] = {}
        """Each session this run recorded: [start, stop] per stretch (the base session
        pauses while a session started over MQTT runs)."""
        self._tags_of: dict[str, dict[str, str]] = {}
        self._manifest_lock = asyncio.Lock()
        self._losses = _Losses()
        self._marker = RunMarker(config.outbox.path)
        self._lost_at_last_stop = 0
        self._manifest_tasks: set[asyncio.Task[None]] = set()

    def _live(self, device: DeviceConfig) -> LiveStream:
        status = {"port": device.port, "driver": device.driver, "host": socket.gethostname()}
        mqtt = self.config.mqtt
        return LiveStream(self.broker, mqtt.topic_prefix, device.name, self.session, status=status)

    def _recording(self, device: DeviceConfig) -> DeviceRecording:
        rec = self.config.recording
        metadata = {
            "driver": device.driver,
            "port": device.port,
            "baudrate": str(device.baudrate),
            "host": socket.gethostname(),
            "pvlog_version": pvlog_version(),
        }
        return DeviceRecording(
            rec.dir,
            device.name,
            self.session,
            metadata=metadata,
            max_file_bytes=rec.max_file_bytes,
        )

    async def _flush_recordings(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            for d in self.devices:
                rec = d.recording
                if rec is not None:
                    rec.flush()
                    while rec.news:  # the disk failed or came back
                        d.event(*rec.news.pop(0))

    async def run(self) -> bool:
        """Run until SIGTERM/SIGINT; False if the batcher or the writer failed first."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig)
        log.info(
            "pvlog %s: session %s, %d device(s), InfluxDB %s",
            pvlog_version(),
            self.session,
            len(self.devices),
            self.config.influx.url,
        )
        self.batcher.extend([self._session_line("start", self.started_ns)])
        self._session_began(self.session, self.started_ns)
        self._check_last_run()
        writer_stop = asyncio.Event()
        batcher = asyncio.create_task(self.batcher.run(), name="batcher")
        writer = asyncio.create_task(
            self.writer.run(writer_stop, self.config.outbox.drain_timeout_s), name="writer"
        )
        readers = [
            asyncio.create_task(d.run(self.stop), name=f"device {d.device.name}")
            for d in self.devices
        ]
        health = asyncio.create_task(self._health_loop(), name="health")
        recordings = asyncio.create_task(self._flush_recordings(), name="recordings")
        live = [
            asyncio.create_task(d.live.run(self.stop), name=f"live {d.device.name}")
            for d in self.devices
            if d.live is not None
        ]
        if self.config.live_enabled:
            mqtt = self.config.mqtt
            control = SessionControl(
                self.broker, mqtt.topic_prefix, socket.gethostname(), self.session_command
            )
            live.append(asyncio.create_task(control.run(self.stop), name="session control"))
        stopping = asyncio.create_task(self.stop.wait(), name="stop")
        try:
            # The batcher and the writer run until told to stop: one that ends
            # earlier has failed, and a logger that cannot keep what it reads must
            # not go on reading as if it could.
            await asyncio.wait([stopping, batcher, writer], return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in (batcher, writer) if t.done()]
            for task in failed:
                exc = task.exception()
                log.critical("%s failed, stopping: %r", task.get_name(), exc, exc_info=exc)
            self.request_stop()
        finally:
            stopping.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            health.cancel()
            recordings.cancel()
            await asyncio.gather(*self._manifest_tasks, return_exceptions=True)
            await asyncio.gather(
                *(asyncio.to_thread(d.recording.close) for d in self.devices if d.recording),
                return_exceptions=True,
            )
            self._session_ended(self.session, time.time_ns(), schedule=False)
            await self._write_manifests(list(self._intervals), complete=True)
            await self._stop_live(live)
            if not batcher.done():
                self.batcher.extend(await self._health_lines())
                now = time.time_ns()
                if self.session != self.base_session:
                    self.batcher.extend([self._session_line("stop", now)])
                    self._switch_session(self.base_session, {})
                self.batcher.extend([self._session_line("stop", now + 1)])
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
            if not writer.done():
                await writer
            depth = await self.outbox.depth()
            await self.outbox.close()
            lost = self.writer.unsent_lines
            self._marker.stopped(lost)
            self.writer.close()
            for d in self.devices:
                log.info("%s: %s", d.device.name, _counts(d.health()))
            # The last commits may evict too, after the last report: said in the stop line.
            late = self.outbox.outbox.evicted_lines - self._losses.evicted
            if late > 0:
                log.error(
                    "at the stop, outbox over max_bytes (%s): the oldest %d more lines were "
                    "evicted unsent%s",
                    self.config.outbox.max_bytes,
                    late,
                    " (still in the raw recordings)" if self.config.recording_enabled else "",
                )
            self._say_stopped(depth.lines, len(uncommitted), lost)
        return not failed

    def _say_stopped(self, in_outbox: int, uncommitted: int, lost: int) -> None:
        """The stop line: where every line went."""
        where = self.config.outbox.path
        if lost:
            log.error(
                "stopped: %d lines lost: the outbox could not take them (disk full) and "
                "%s did not either (they are in the raw recordings, if on)",
                lost,
                "InfluxDB" if isinstance(self.writer, InfluxWriter) else "the broker",
            )
        elif uncommitted:
            log.info("stopped; the %d lines the outbox could not take were sent", uncommitted)
        uncleared = self.writer.uncleared_batches
        if in_outbox:
            log.warning(
                "stopped with %d lines in the outbox (%s): they are sent on the next start%s",
                in_outbox,
                where,
                f" ({uncleared} batches of them were sent already: the disk was too full "
                "to clear them; sending them again is harmless)"
                if uncleared
                else "",
            )
        elif not lost:
            log.info("stopped; outbox empty (%s)", _counts(self.writer.health()))

    def _check_last_run(self) -> None:
        """Say so when the last run on this outbox ended without a clean stop (``kill -9``,
        power cut): what it had not yet committed is lost from InfluxDB, at most one flush
        interval, and only the raw recordings keep it; or when its clean stop lost lines
        (a full disk and no InfluxDB). Then mark this run as running."""
        last = self._marker.last_run()
        if last is not None and not last.clean:
            interval = self.config.influx.flush_interval_ms
            detail = (
                f"the last run (pid {last.pid}, session {last.session}) "
                f"did not stop cleanly: up to {interval} ms of its lines (one flush interval) "
                "were never committed; the raw recordings keep them, if on"
            )
            log.warning("%s", detail)
            for d in self.devices:
                d.event("unclean_stop", detail, interval / 1000)
        elif last is not None and last.lost_lines:
            self._lost_at_last_stop = last.lost_lines
            detail = (
                f"the last run (pid {last.pid}, session {last.session}) lost "
                f"{last.lost_lines} lines at its stop: the outbox's disk was full and they "
                "could not be sent; the raw recordings keep them, if on"
            )
            log.warning("%s", detail)
            for d in self.devices:
                d.event("lost_at_stop", detail, float(last.lost_lines))
        self._marker.running(self.session)

    @staticmethod
    async def _stop_live(tasks: list[asyncio.Task[None]]) -> None:
        """Let each live stream say offline, but never hold up the stop for a broker."""
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=LIVE_STOP_TIMEOUT_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def request_stop(self, sig: signal.Signals | None = None) -> None:
        if not self.stop.is_set():
            log.info("stopping (%s)", sig.name if sig else "requested")
        self.stop.set()

    def session_command(self, command: Command) -> str:
        """Start or stop a session (from MQTT); returns the session now in force."""
        now = time.time_ns()
        if command.action == "stop":
            if self.session == self.base_session:
                raise CommandError("no session started over MQTT is running")
            self.batcher.extend([self._session_line("stop", now)])
            self._switch_session(self.base_session, {})
            log.info("session stopped; back to %s", self.session)
            return self.session
        if command.name == self.base_session:
            raise CommandError(f"{command.name!r} is the name of the daemon's own session")
        if self.session != self.base_session:  # a new start ends the running one
            self.batcher.extend([self._session_line("stop", now)])
            now += 1
        self._switch_session(command.name, command.tags)
        self.batcher.extend([self._session_line("start", now)])
        log.info("session %s started: %s", command.name, command.tags)
        return self.session

    def _switch_session(self, name: str, tags: dict[str, str]) -> None:
        now = time.time_ns()
        old = self.session
        self.session, self.session_tags = name, tags
        for d in self.devices:
            d.set_session(name)
        self._session_ended(old, now, schedule=True)
        self._session_began(name, now)

    # -- QA manifests (daemon.recordings.manifest) ----------------------------------------

    def _session_began(self, session: str, now: int) -> None:
        self._intervals.setdefault(session, []).append([now, None])
        self._tags_of[session] = dict(self.session_tags)
        self._schedule_manifest(session, complete=False)

    def _session_ended(self, session: str, now: int, *, schedule: bool) -> None:
        stretches = self._intervals.get(session)
        if stretches and stretches[-1][1] is None:
            stretches[-1][1] = now
        if schedule:
            self._schedule_manifest(session, complete=True)

    def _schedule_manifest(self, session: str, *, complete: bool) -> None:
        if not self.config.recording_enabled:
            return
        task = asyncio.create_task(self._write_manifests([session], complete=complete))
        self._manifest_tasks.add(task)
        task.add_done_callback(self._manifest_tasks.discard)

    async def _write_manifests(self, sessions: list[str], *, complete: bool) -> None:
        """Write (or rewrite) each session's manifest; with hashes once its files are finished."""
        recordings = [d.recording for d in self.devices if d.recording is not None]
        if not recordings:
            return
        async with self._manifest_lock:
            if complete:  # a session switch finishes the old files on each writer thread
                await asyncio.gather(*(asyncio.to_thread(r.wait_written) for r in recordings))
            for session in sessions:
                doc = self._manifest_doc(session, complete)
                directory = self.config.recording.dir / session
                files = [p for r in recordings for p in r.files if p.parent == directory]
                path = directory / manifest.manifest_name(self.started_ns, session, self.host)
                try:
                    await asyncio.to_thread(self._finish_manifest, path, doc, files, complete)
                except OSError:
                    log.exception("cannot write the manifest %s", path)

    @staticmethod
    def _finish_manifest(
        path: Path, doc: dict[str, Any], files: list[Path], complete: bool
    ) -> None:
        present = [p for p in files if p.exists()]
        doc["files"] = manifest.file_entries(present, hashed=complete)
        manifest.write(path, doc)
        if complete:
            log.info("manifest %s: %d file(s)", path, len(present))

    def _manifest_doc(self, session: str, complete: bool) -> dict[str, Any]:
        devices = []
        for d in self.devices:
            info = d.identity
            identity = (
                None
                if info is None
                else {
                    "model": info.model,
                    "serial": info.serial,
                    "firmware": info.firmware,
                    **info.extra,
                }
            )
            rec = d.recording
            devices.append(
                {
                    "name": d.device.name,
                    "driver": d.device.driver,
                    "port": d.device.port,
                    "identity": identity,
                    "recording_dropped": 0 if rec is None else rec.dropped,
                    "recording_failed": False if rec is None else rec.failed,
                    "recording_failures": 0 if rec is None else rec.failures,
                }
            )
        return {
            "format": manifest.FORMAT,
            "session": session,
            "complete": complete,
            "pvlog_version": pvlog_version(),
            "host": self.host,
            "run_started_ns": self.started_ns,
            "stretches": [
                {"start_ns": a, "stop_ns": b} for a, b in self._intervals.get(session, [])
            ],
            "session_tags": {**self.config.session.tags, **self._tags_of.get(session, {})},
            "config": manifest.redact(self.config.model_dump(mode="json")),
            "devices": devices,
        }

    def _session_line(self, state: str, time_ns: int) -> str:
        fields: dict[str, str | float | int | bool | None] = {
            "state": state,
            "host": socket.gethostname(),
            "pvlog_version": pvlog_version(),
            "devices": ",".join(d.device.name for d in self.devices),
        }
        fields.update(self.config.session.tags)
        fields.update(self.session_tags)
        return encode_line(series_prefix("pv_session", {"session": self.session}), fields, time_ns)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            self.batcher.extend(await self._health_lines())

    def _report_losses(self) -> None:
        """Each device gets a ``pv_event`` for what the outbox evicted, what memory
        dropped, or a commit failure, since the last report (every ``HEALTH_INTERVAL_S``)."""
        seen = self._losses
        box, batcher = self.outbox.outbox, self.batcher
        # Once: the outbox's thread counts on meanwhile, and the health line must show
        # exactly the sum of what was reported.
        evicted, dropped = box.evicted_lines, batcher.dropped_lines
        news: list[tuple[str, str, int]] = []
        if evicted > seen.evicted:
            n = evicted - seen.evicted
            news.append(("outbox_evicted", f"outbox over max_bytes ({box.max_bytes}): "
                         f"the oldest {n} lines were evicted unsent", n))  # fmt: skip
        if dropped > seen.dropped:
            n = dropped - seen.dropped
            news.append(("memory_dropped", f"the outbox took nothing for too long: "
                         f"{n} lines dropped from memory", n))  # fmt: skip
        if batcher.commit_failures > seen.failures and not seen.failing:  # a new stretch
            news.append(("outbox_unwritable", "the outbox could not take commits (disk full?); "
                         "lines waited in memory",
                         batcher.commit_failures - seen.failures))  # fmt: skip
        seen.evicted, seen.dropped = evicted, dropped
        seen.failures, seen.failing = batcher.commit_failures, batcher.failing
        recorded = " (still in the raw recordings)" if self.config.recording_enabled else ""
        for code, detail, n in news:
            where = "" if code == "outbox_unwritable" else recorded
            log.error("%s%s", detail, where)
            for d in self.devices:
                d.event(code, detail + where, float(n))

    async def _health_lines(self) -> list[str]:
        now = time.time_ns()
        lines = [d.health_line(now) for d in self.devices]
        self._report_losses()
        box, batcher = self.outbox.outbox, self.batcher
        fields: dict[str, float | int | str | bool | None] = {
            "outbox_max_bytes": box.max_bytes,
            "outbox_evicted_batches": box.evicted_batches,
            "outbox_evicted_lines": self._losses.evicted,
            "outbox_commit_failures": batcher.commit_failures,
            "memory_dropped_lines": self._losses.dropped,
            "lost_at_last_stop_lines": self._lost_at_last_stop,
            **self.writer.health(),
        }
        try:
            depth = await self.outbox.depth()
            fields |= {
                "outbox_batches": depth.batches,
                "outbox_lines": depth.lines,
                "dead_letters": depth.dead_letters,
                "outbox_bytes": depth.bytes,
                "outbox_disk_bytes": depth.disk_bytes,
            }
        except sqlite3.Error as exc:
            log.warning("cannot read the outbox's depth: %s", exc)
        lines.append(
            encode_line(series_prefix("pvlog_health", {"component": "writer"}), fields, now)
        )
        return lines


@dataclass
class _Losses:
    """What the outbox evicted or memory dropped, and its commit failures, as last reported."""

    evicted: int = 0
    dropped: int = 0
    failures: int = 0
    failing: bool = False


def _counts(health: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v}" for k, v in health.items() if v or k == "samples")
