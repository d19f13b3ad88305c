"""A full recordings disk (a tmpfs of its own: the kernel's ENOSPC, mid-write) under a
session change and a stop, with the manifests on that disk too, wired as the daemon
wires them: what the recording held is in its own session's files once there is room,
the manifests follow, no temporary file is left, and what could not be written is said
in the log, the device's events and the audit trail."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.acquisition.status import DeviceStatus
from daemon.config import Config
from daemon.pipeline import Chunk, Samples, StampedSample
from daemon.recordings import manifest
from daemon.recordings.reader import samples
from daemon.recordings.writer import DeviceRecording
from daemon.service.auditing import DaemonAudit
from daemon.service.manifests import ManifestWriter, RecordedDevice
from daemon.sessions.book import SessionBook
from daemon.sessions.control import Command
from tests.support.disk import fill, tmpfs

pytestmark = pytest.mark.integration

HOST = "h"
MAX_READS = 2000
"""Reads fed at most before the full disk refuses one (a page the file already has
takes a few more): far past what it takes."""


class Run:
    """One device's recording and the manifests, as ``service/daemon.py`` wires them."""

    def __init__(self, rec: Path, trail: Path) -> None:
        config = Config.model_validate({
            "influx": {"url": "http://127.0.0.1:8086"},
            "recording": {"dir": str(rec)},
            "session": {"name": "base"},
            "device": [{"name": "d1", "driver": "pvs", "port": "/dev/ttyUSB0"}],
        })  # fmt: skip
        self.dir = rec
        self.book = SessionBook("base", time.time_ns())
        self.audit = DaemonAudit(trail, HOST)
        self.events: list[tuple[str, str, float | None]] = []
        audit_file = functools.partial(self.audit.recording_file, "d1")
        self.rec = DeviceRecording(rec, "d1", self.book.state, metadata={"run": self.book.run},
                                   max_file_bytes=2**20, on_event=self._event,
                                   on_file=audit_file)  # fmt: skip
        status = DeviceStatus("d1", "pvs", "/dev/ttyUSB0")
        self.manifests = ManifestWriter(config, self.book, [RecordedDevice(status, self.rec)],
                                        HOST, "9", audit=self.audit)  # fmt: skip
        self.fed: dict[str, list[int]] = {}
        self.seq = 0

    def _event(self, code: str, detail: str, value: float | None) -> None:
        self.events.append((code, detail, value))

    async def feed(self, reads: int) -> None:
        """``reads`` reads, handed over ten at a time, each hand-over written or held."""
        for _ in range(reads):
            t = time.time_ns()
            one = Samples.of([StampedSample(t, t, self.seq, {"pressure_kpa": 1.5}, 0)])
            self.rec.take(Chunk(b"$PVS%06d\r\n" % self.seq, t, one, [], [], mark=self.seq))
            self.fed.setdefault(self.book.current, []).append(self.seq)
            self.seq += 1
            if self.seq % 10 == 0:
                self.rec.flush()
                await asyncio.to_thread(self.rec.wait_written)

    async def until_failed(self) -> None:
        for _ in range(MAX_READS // 10):
            await self.feed(10)
            if self.rec.failed:
                return
        raise AssertionError("the full disk took every write")

    def command(self, action: str, name: str = "") -> None:
        """A session started or stopped: its manifests, as ``Daemon._sessions`` has them."""
        tags = {"lot": name} if name else {}
        for t in self.book.command(Command(action, name, tags, None), time.time_ns()):
            self.manifests.schedule(t.session, complete=t.state == "stop")
            if t.state == "stop" and self.book.current == self.book.base != t.session:
                self.manifests.schedule(self.book.current, complete=False)

    async def stop(self) -> None:
        """As ``Daemon._finish_recordings``, then the trail closed."""
        await self.manifests.settle()
        await asyncio.to_thread(self.rec.close)
        await self.manifests.write(list(self.book.stretches), complete=True)
        await asyncio.to_thread(self.audit.stopped, self.book.run, "test", {}, {})

    def recorded(self, session: str) -> list[int]:
        return [s["seq"] for p in sorted((self.dir / session).glob("*.mcap")) for s in samples(p)]

    def manifest_of(self, session: str) -> dict[str, Any]:
        name = manifest.manifest_name(self.book.started_ns, session, HOST)
        doc: dict[str, Any] = json.loads((self.dir / session / name).read_text())
        return doc


def temporary(rec: Path) -> list[Path]:
    return [p for p in rec.rglob("*") if p.name.endswith(".tmp")]


def audited(trail: Path, kind: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in trail.read_text().splitlines()]
    return [e["what"] for e in entries if e["kind"] == kind]


def test_a_session_change_on_a_full_disk_loses_nothing_once_there_is_room(
    tmp_path: Path,
) -> None:
    trail = tmp_path / "audit.jsonl"
    with tmpfs(tmp_path / "rec", "1m") as rec:
        run = Run(rec, trail)

        async def scenario() -> None:
            run.manifests.schedule("base", complete=False)  # the start's
            await run.feed(50)
            await run.manifests.settle()
            ballast = fill(rec)
            await run.until_failed()
            run.command("start", "L7")  # L7's first manifest: refused
            await run.feed(40)
            run.command("stop")  # L7's complete one and base's: refused
            await run.feed(40)
            await run.manifests.settle()
            assert temporary(rec) == [], "a refused manifest leaves no .tmp"
            assert run.manifests.unwritten == ["L7", "base"]
            assert run.rec.files and run.rec.dropped == 0

            ballast.unlink()  # the operator makes room
            run.rec.flush(now=True)
            await asyncio.to_thread(run.rec.wait_written)
            run.rec.flush()  # what the writer thread found: L7 got a file late
            await run.manifests.settle()
            assert run.manifests.unwritten == []
            late = run.manifest_of("L7")
            assert late["complete"] is True
            files = [p.name for p in (rec / "L7").glob("*.mcap")]
            assert files and [f["name"] for f in late["files"]] == files
            await run.feed(20)
            await run.stop()

        asyncio.run(scenario())
        verdict = manifest.verify(rec)
        base, l7 = run.recorded("base"), run.recorded("L7")
        left = temporary(rec)
    assert base == run.fed["base"], "every base read, in base's files, in order, once"
    assert l7 == run.fed["L7"], "every L7 read, in L7's files"
    assert len(l7) == 40 and len(base) == run.seq - 40
    assert verdict.problems == [], "each file in its session's manifest, as it is"
    assert left == []
    assert run.rec.dropped == 0 and run.rec.kept_mark == run.seq - 1
    codes = [(code, value) for code, _, value in run.events]
    assert codes == [("recording_stopped", None), ("recording_resumed", 0)]
    refused = audited(trail, "manifest_unwritten")
    assert {(w["session"], w["complete"]) for w in refused} == {
        ("L7", False),
        ("L7", True),
        ("base", False),
    }
    assert all("No space left on device" in w["error"] and not w["at_stop"] for w in refused)
    written = [(w["session"], w["complete"]) for w in audited(trail, "manifest_written")]
    assert ("L7", True) in written


def test_a_stop_on_a_full_disk_says_what_it_could_not_write_and_leaves_no_tmp(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trail = tmp_path / "audit.jsonl"
    with tmpfs(tmp_path / "rec", "1m") as rec:
        run = Run(rec, trail)

        async def scenario() -> None:
            run.manifests.schedule("base", complete=False)
            await run.feed(30)
            await run.manifests.settle()
            fill(rec)
            await run.until_failed()
            await run.feed(25)  # the last 5 still pending at the stop
            with caplog.at_level(logging.ERROR):
                await run.stop()

        asyncio.run(scenario())
        recorded = run.recorded("base")
        first = run.manifest_of("base")
        left = temporary(rec)
    fed = run.fed["base"]
    assert recorded == fed[: len(recorded)], "what is in the file is the oldest, whole"
    lost = 2 * (len(fed) - len(recorded))  # a read is two messages: its bytes, its sample
    assert lost > 0
    assert run.rec.unwritten == run.rec.dropped == lost
    assert run.rec.kept_mark == recorded[-1]
    code, detail, value = run.events[-1]
    assert (code, value) == ("recording_lost", lost)
    assert f"{lost} messages of session(s) base could not be written" in detail
    said = [r.getMessage() for r in caplog.records]
    assert any(f"recording lost: the disk still failed at the stop: {lost} messages" in s
               for s in said)  # fmt: skip
    assert any("at the stop" in s and "session base's files are in no complete manifest" in s
               for s in said), said  # fmt: skip
    assert left == []
    assert first["complete"] is False, "the manifest written before stands, whole"
    (refused,) = audited(trail, "manifest_unwritten")
    assert (refused["session"], refused["complete"], refused["at_stop"]) == ("base", True, True)
