"""The daemon's manifest of a session, built from the session book and the devices'
status: what QA reads to know what a session's files are and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from daemon.acquisition.status import DeviceStatus
from daemon.config import Config
from daemon.recordings.writer import DeviceRecording
from daemon.service.manifests import ManifestWriter, RecordedDevice
from daemon.sessions.book import SessionBook
from daemon.sessions.control import Command
from drivers.records import DeviceInfo

T0 = 1_800_000_000_000_000_000


@dataclass
class Recording:
    dropped: int = 0
    failed: bool = False
    failures: int = 0


def writer(tmp_path: Path) -> tuple[ManifestWriter, SessionBook, DeviceStatus]:
    config = Config.model_validate(
        {
            "influx": {"url": "http://u:hunter2@127.0.0.1:8086"},
            "recording": {"dir": str(tmp_path)},
            "session": {"name": "run", "tags": {"bench": "B1"}},
            "device": [{"name": "d1", "driver": "pvs", "port": "/dev/ttyUSB0"}],
        }
    )
    book = SessionBook("run", T0)
    status = DeviceStatus("d1", "pvs", "/dev/ttyUSB0")
    rec = cast(DeviceRecording, Recording(dropped=4, failures=1))
    return (
        ManifestWriter(config, book, [RecordedDevice(status, rec)], "h", "9"),
        book,
        status,
    )


def test_a_sessions_manifest_says_when_it_ran_with_what_and_on_which_device(
    tmp_path: Path,
) -> None:
    manifests, book, status = writer(tmp_path)
    status.identity = DeviceInfo("BIX-30", "SN00417", "2.3.1", T0, {"p_unit": "ATM"})
    book.command(Command("start", "lot42", {"lot": "42"}, None), T0 + 10)
    book.command(Command("stop", "", {}, None), T0 + 20)
    doc: dict[str, Any] = manifests.doc("lot42", complete=True)
    assert (doc["session"], doc["complete"], doc["host"], doc["pvlog_version"]) == (
        "lot42",
        True,
        "h",
        "9",
    )
    assert doc["stretches"] == [{"start_ns": T0 + 10, "stop_ns": T0 + 20}]
    assert doc["session_tags"] == {"bench": "B1", "lot": "42"}
    (device,) = doc["devices"]
    assert device["identity"] == {
        "model": "BIX-30",
        "serial": "SN00417",
        "firmware": "2.3.1",
        "p_unit": "ATM",
    }
    assert (device["recording_dropped"], device["recording_failures"]) == (4, 1)
    assert "hunter2" not in str(doc["config"]), "secrets are redacted"
    run = manifests.doc("run", complete=False)
    assert [s["stop_ns"] for s in run["stretches"]] == [T0 + 10, None]
    assert run["session_tags"] == {"bench": "B1"}
