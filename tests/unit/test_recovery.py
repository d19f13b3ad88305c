"""A killed run's manifests completed at the next start: every file it left hashed as
found, into its own manifest or the one it would have written, signed and audited; a
file of another run beside them never taken for its."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys
from daemon.config import Config
from daemon.recordings import manifest
from daemon.recordings.file import RecordingFile
from daemon.recordings.format import file_name
from daemon.service.auditing import DaemonAudit
from daemon.service.manifests import ManifestWriter
from daemon.service.recovery import killed_run, recover
from daemon.service.run_marker import LastRun, RunMarker
from daemon.sessions.book import SessionBook

T0 = 1_700_000_000_123_000_000
KILLED = "20231114T221320Z-aaaaaa"
HOST = "h"


def config(rec: Path) -> Config:
    return Config.model_validate(
        {
            "influx": {"url": "http://127.0.0.1:8086"},
            "recording": {"dir": str(rec)},
            "session": {"name": "base", "tags": {"bench": "B1"}},
            "device": [{"name": "d1", "driver": "pvs", "port": "/dev/ttyUSB0"}],
        }
    )


def recording(folder: Path, part: int, run: str, *, whole: bool, **tags: str) -> Path:
    """A recording of device d1: finished, or cut short after its metadata (a kill)."""
    path = folder / file_name(T0 + part * 10**9, folder.name, "d1", part)
    meta = {"device": "d1", "driver": "pvs", "port": "/dev/ttyUSB0", "run": run,
            "pvlog_version": "0.1.0+gkilled", "session": folder.name,
            **{f"tag.{k}": v for k, v in tags.items()}}  # fmt: skip
    f = RecordingFile(path, meta)
    if whole:
        f.close()
    else:
        f.stream.close()  # what the buffer held reaches the disk; no end is written
    return path


def killed_manifest(folder: Path, files: list[Path], run: str = KILLED) -> Path:
    path = folder / manifest.manifest_name(T0, folder.name, HOST)
    doc = {"format": manifest.FORMAT, "session": folder.name, "complete": False,
           "pvlog_version": "0.1.0+gkilled", "host": HOST, "run": run, "run_started_ns": T0,
           "stretches": [{"start_ns": T0, "stop_ns": None}],
           "session_tags": {"bench": "B1"}, "config": {}, "devices": [{"name": "d1"}],
           "files": manifest.file_entries(files, hashed=False)}  # fmt: skip
    manifest.write(path, doc)
    return path


def writer(rec: Path, trail: Path | None, key: Ed25519PrivateKey | None) -> ManifestWriter:
    audit = None if trail is None else DaemonAudit(trail, HOST)
    book = SessionBook("base", T0 + 3600 * 10**9)
    return ManifestWriter(config(rec), book, [], HOST, "0.1.0+gnext", audit=audit, key=key)


def entries(trail: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in trail.read_text().splitlines()]


def test_the_run_marker_names_the_killed_run(tmp_path: Path) -> None:
    RunMarker(tmp_path / "o.sqlite", KILLED, T0).running("s1")
    last = RunMarker(tmp_path / "o.sqlite").last_run()
    assert last is not None and (last.run, last.started_ns, last.clean) == (KILLED, T0, False)
    assert killed_run(last, "next") == last
    assert killed_run(last, KILLED) is None, "never this run's own"
    assert killed_run(LastRun(clean=True, run=KILLED, started_ns=T0), "next") is None
    assert killed_run(LastRun(clean=False), "next") is None, "a marker that names no run"
    assert killed_run(None, "next") is None


def test_a_killed_runs_files_are_hashed_as_found_into_its_manifests(tmp_path: Path) -> None:
    rec, trail, key = tmp_path / "rec", tmp_path / "audit.jsonl", Ed25519PrivateKey.generate()
    base, lot = rec / "base", rec / "L7"
    earlier = recording(base, 0, "20231113T000000Z-000000", whole=True)
    manifest.write(base / "earlier.manifest.json",
                   {"format": manifest.FORMAT, "session": "base", "complete": True, "host": HOST,
                    "run": "20231113T000000Z-000000",
                    "files": manifest.file_entries([earlier], hashed=True)})  # fmt: skip
    listed = recording(base, 1, KILLED, whole=True)
    own = killed_manifest(base, [listed])
    rotated = recording(base, 2, KILLED, whole=False)
    empty = base / file_name(T0 + 3 * 10**9, "base", "d1", 3)
    empty.touch()  # killed before its first bytes reached the disk
    elsewhere = recording(base, 4, "20231114T221321Z-bbbbbb", whole=False)  # another daemon's
    in_lot = recording(lot, 5, KILLED, whole=False, bench="B1", lot="L7")
    cut = rotated.read_bytes()
    manifests = writer(rec, trail, key)
    assert manifests.audit is not None

    written = asyncio.run(recover(LastRun(clean=False, run=KILLED, started_ns=T0), manifests))
    manifests.audit.stopped(manifests.book.run, "test", {}, {})

    stand_in = lot / manifest.manifest_name(T0, "L7", HOST)
    assert written == [stand_in.resolve(), own.resolve()]  # in the folders' order
    doc = json.loads(own.read_text())
    assert doc["complete"] is True
    assert doc["recovered"]["run"] == KILLED and doc["recovered"]["by_run"] == manifests.book.run
    assert [f["name"] for f in doc["files"]] == [listed.name, rotated.name, empty.name]
    assert all("sha256" in f for f in doc["files"])
    assert doc["stretches"] == [{"start_ns": T0, "stop_ns": None}], "as the run left it"
    assert doc["signature"]["key"] == keys.fingerprint(key.public_key())
    assert "seq" in doc["audit"]
    assert rotated.read_bytes() == cut, "a file cut short is hashed as it is"
    made = json.loads(stand_in.read_text())
    assert (made["session"], made["run"], made["run_started_ns"]) == ("L7", KILLED, T0)
    assert made["session_tags"] == {"bench": "B1", "lot": "L7"}
    assert made["devices"] == [{"name": "d1"}], "from the run's other manifest"
    assert [f["name"] for f in made["files"]] == [in_lot.name]

    verdict = manifest.verify(rec, frozenset({keys.fingerprint(key.public_key())}))
    assert verdict.problems == [f"base/{elsewhere.name}: in no manifest"]
    said = entries(trail)
    again = [e["what"] for e in said if e["kind"] == "manifest_written"]
    assert [(w["file"], w.get("recovered")) for w in again] == [
        (stand_in.name, True),
        (own.name, True),
    ]
    (summary,) = [e["what"] for e in said if e["kind"] == "recordings_recovered"]
    assert summary == {"run": KILLED, "manifests": [str(p) for p in written], "files": 4}

    rotated.write_bytes(cut[:-1] + bytes([cut[-1] ^ 1]))
    altered = manifest.verify(rec).problems
    assert f"base/{own.name}: {rotated.name}: SHA-256 differs: altered" in altered
    second = writer(rec, None, key)
    assert asyncio.run(recover(LastRun(clean=False, run=KILLED, started_ns=T0), second)) == []


def test_a_run_that_wrote_no_manifest_gets_the_one_it_would_have(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    alone = recording(rec / "L8", 1, KILLED, whole=False, bench="B1", lot="L8")
    old = recording(rec / "old", 3, KILLED, whole=False)
    os.utime(rec / "old", ns=(T0 - 10**12, T0 - 10**12))  # untouched since before the run

    written = asyncio.run(recover(LastRun(clean=False, run=KILLED, started_ns=T0),
                                  writer(rec, None, None)))  # fmt: skip

    assert written == [(rec / "L8" / manifest.manifest_name(T0, "L8", HOST)).resolve()]
    made = json.loads(written[0].read_text())
    assert made["devices"] == [{"name": "d1", "driver": "pvs", "port": "/dev/ttyUSB0"}]
    assert (made["pvlog_version"], made["session_tags"]) == (
        "0.1.0+gkilled",
        {"bench": "B1", "lot": "L8"},
    )
    assert [f["name"] for f in made["files"]] == [alone.name]
    assert manifest.verify(rec).problems == [f"old/{old.name}: in no manifest"]


def test_a_listed_file_gone_stays_listed_and_shows_missing(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    gone = recording(rec / "L9", 2, KILLED, whole=True)
    own = killed_manifest(rec / "L9", [gone])
    gone.unlink()

    written = asyncio.run(recover(LastRun(clean=False, run=KILLED, started_ns=T0),
                                  writer(rec, None, None)))  # fmt: skip

    assert written == [own.resolve()]
    assert manifest.verify(rec).problems == [f"L9/{own.name}: {gone.name}: missing"]


def test_a_manifest_the_trail_named_but_a_kill_kept_from_the_disk_is_written(
    tmp_path: Path,
) -> None:
    """A manifest is named in the trail before it is written: a run killed between the
    two, in a session folder where it left nothing else, still gets that manifest, so the
    trail's entry is not left naming a file that never was."""
    rec = tmp_path / "rec"
    trail = tmp_path / "audit.jsonl"
    (rec / "base").mkdir(parents=True)
    announced = writer(rec, trail, None)
    assert announced.audit is not None
    missing = rec / "base" / manifest.manifest_name(T0, "base", HOST)
    announced.audit.manifest(missing, "base", False, None, sha256="f" * 64)  # and then the kill
    announced.audit.stopped("x", "test", {}, {})

    manifests = writer(rec, trail, None)
    assert manifests.audit is not None
    written = asyncio.run(recover(LastRun(clean=False, run=KILLED, started_ns=T0), manifests))
    manifests.audit.stopped(manifests.book.run, "test", {}, {})
    assert written == [missing.resolve()]
    doc = json.loads(missing.read_text())
    assert (doc["complete"], doc["files"], doc["recovered"]["run"]) == (True, [], KILLED)
    last = [e for e in entries(trail) if e["kind"] == "manifest_written"][-1]
    assert last["what"]["sha256"] == manifest.sha256_file(missing)
