"""The audit trail's chain: each tamper caught, the first bad entry named."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.audit.trail import AuditTrail, verify


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    t = AuditTrail(path)
    for k in range(1, 6):
        t.append(k * 1000, "session_start", "mqtt:alice", {"session": f"s{k}"})
    return path


def test_a_whole_trail_verifies_and_appends_after_a_restart(trail: Path) -> None:
    assert verify(trail).ok and verify(trail).entries == 5
    again = AuditTrail(trail)  # a new run goes on from the head
    assert again.seq == 5
    again.append(9000, "daemon_stop", "os:pvlog", {})
    v = verify(trail)
    assert v.ok and v.entries == 6 and not v.torn


def test_an_edited_entry_is_named(trail: Path) -> None:
    lines = trail.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"mqtt:alice", b"mqtt:mallory")
    trail.write_bytes(b"\n".join(lines))
    v = verify(trail)
    assert not v.ok and v.entries == 3 and v.problem is not None
    assert v.problem.startswith("entry 4 (line 4): does not follow entry 3")


def test_a_removed_and_two_swapped_entries_are_named(trail: Path) -> None:
    lines = trail.read_bytes().split(b"\n")
    trail.write_bytes(b"\n".join(lines[:1] + lines[2:]))
    v = verify(trail)
    assert v.problem is not None and v.problem.startswith("entry 2 (line 2): says seq 3")
    trail.write_bytes(b"\n".join([lines[0], lines[2], lines[1], *lines[3:]]))
    v = verify(trail)
    assert v.problem is not None and v.problem.startswith("entry 2 (line 2): says seq 3")


def test_a_torn_last_entry_is_said_and_the_rest_verifies(trail: Path) -> None:
    data = trail.read_bytes()
    trail.write_bytes(data + b'{"seq":6,"time_')  # a crash mid-append
    v = verify(trail)
    assert v.ok and v.torn and v.entries == 5
    reopened = AuditTrail(trail)  # the next run goes on from the last whole entry
    assert reopened.seq == 5
    reopened.append(7000, "daemon_start", "os:pvlog", {})
    v = verify(trail)
    assert v.ok and v.torn and v.entries == 6, "the torn entry said, the chain whole around it"
