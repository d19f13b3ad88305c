"""A lot report holds the recordings to the audit trail: a session of the lot whose
folder is gone (recordings and manifest with it) is said, as is a file the trail names
that differs; the sessions not read are named for the report's audit entry; sessions
of other lots are not its business."""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

from daemon.audit.crosscheck import held_to_trail
from daemon.audit.trail import AuditTrail
from daemon.recordings.manifest import file_entries, write
from daemon.tools.lot import in_trail, not_read


def recorded(rec: Path, session: str, lot: str, trail: AuditTrail) -> Path:
    trail.append("session_start", "daemon", {"session": session, "tags": {"lot": lot}})
    path = rec / session / f"{session}_bench1_0001.mcap"
    path.parent.mkdir(parents=True)
    path.write_bytes(session.encode() * 100)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    trail.append("recording_closed", "daemon",
                 {"session": session, "file": path.name, "sha256": digest})  # fmt: skip
    return path


def test_a_lot_session_gone_whole_and_a_file_changed_are_said(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    trail = AuditTrail(rec / "audit.jsonl")
    first = recorded(rec, "L7-s01", "L7", trail)
    recorded(rec, "L7-s02", "L7", trail)
    recorded(rec, "L8-s01", "L8", trail)
    args = argparse.Namespace(config=None, recordings=[rec], lot="L7")
    assert in_trail(args, set(), []) == [] and not_read(args, {"L7-s01", "L7-s02"}) == []
    assert not_read(args, {"L7-s01"}) == ["L7-s02"], "a lot judged on some of its sessions"

    for path in (rec / "L7-s02").iterdir():
        path.unlink()
    (rec / "L7-s02").rmdir()
    first.write_bytes(b"another balloon")
    said = in_trail(args, set(), [])
    assert len(said) == 2
    assert said[0].startswith(f"L7-s01/{first.name}: its SHA-256 is not the one the trail's")
    assert said[1].startswith("L7-s02/: missing: the trail names 1 file(s) in it (entry 4 on)")
    assert not any("L8" in line for line in said), "another lot's sessions are not this report's"


def test_a_folder_brought_from_another_recordings_directory_is_refused(tmp_path: Path) -> None:
    """Same key, same lot: its manifest names an entry of the other directory's trail."""
    here, there = tmp_path / "here", tmp_path / "there"
    ours, theirs = AuditTrail(here / "audit.jsonl"), AuditTrail(there / "audit.jsonl")
    recorded(here, "L7-s01", "L7", ours)
    theirs.append("daemon_start", "daemon", {"elsewhere": True})
    path = recorded(there, "L7-s04", "L7", theirs)
    anchor = {"seq": theirs.seq, "sha256": theirs.head}
    doc = {"format": "pvlog-manifest/1", "session": "L7-s04", "complete": True,
           "files": file_entries([path], hashed=True), "audit": anchor}  # fmt: skip
    write(path.parent / "x_L7-s04_pc.manifest.json", doc)
    shutil.copytree(there / "L7-s04", here / "L7-s04")
    anchor_said, start_said = held_to_trail(here / "audit.jsonl", here, here, named=False)
    assert anchor_said.startswith("L7-s04/x_L7-s04_pc.manifest.json: names entry 3 of an audit")
    assert anchor_said.endswith("anchored to another trail (brought from elsewhere), or this "
                                "one rewritten")  # fmt: skip
    assert start_said.endswith("never recorded its start")
    # Its manifest made to name no entry at all: still refused.
    write(here / "L7-s04" / "x_L7-s04_pc.manifest.json", {**doc, "audit": {"unwritten": True}})
    said = held_to_trail(here / "audit.jsonl", here, here, named=False)
    assert said[0].endswith("names no entry of the audit trail (made where it was off or could "
                            "not be written, or brought from elsewhere)")  # fmt: skip
