"""The audit trail's chain: each tamper caught, the first bad entry named; a torn line
only ever the last; times taken with seq; the daemon's signed heads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from daemon import cli
from daemon.audit import keys, trail_check, trust, witness
from daemon.audit.trail import HEAD, TORN, AuditTrail, entries, verify


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    t = AuditTrail(path)
    for k in range(1, 6):
        t.append("session_start", "mqtt:alice", {"session": f"s{k}"})
    return path


def test_a_whole_trail_verifies_and_appends_after_a_restart(trail: Path) -> None:
    assert verify(trail).ok and verify(trail).entries == 5
    again = AuditTrail(trail)  # a new run goes on from the head
    assert again.seq == 5
    again.append("daemon_stop", "os:pvlog", {})
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


def test_a_torn_last_line_is_said_then_kept_in_an_entry_of_its_own(trail: Path) -> None:
    data = trail.read_bytes()
    trail.write_bytes(data + b'{"seq":6,"time_')  # a crash mid-append
    v = verify(trail)
    assert v.ok and v.torn and v.entries == 5
    reopened = AuditTrail(trail)  # the next run goes on from the last whole entry
    assert reopened.seq == 5
    reopened.append("daemon_start", "os:pvlog", {})
    v = verify(trail)
    assert v.ok and not v.torn and v.entries == 7, "the fragment an entry, the chain whole"
    torn, start = entries(trail)[5:]
    assert torn["kind"] == TORN and torn["what"]["fragment"] == '{"seq":6,"time_'
    assert torn["what"]["bytes"] == 15 and start["kind"] == "daemon_start"


def test_a_torn_looking_line_inside_the_trail_fails(trail: Path) -> None:
    lines = trail.read_bytes().split(b"\n")
    trail.write_bytes(b"\n".join([*lines[:3], b'{"seq":4,"time_', *lines[3:]]))
    v = verify(trail)
    assert not v.ok and v.entries == 3 and v.problem is not None
    assert v.problem.startswith("line 4: not an audit entry (only the last line may be torn")


def test_duplicate_keys_in_an_entry_fail(trail: Path) -> None:
    lines = trail.read_bytes().split(b"\n")
    lines[4] = lines[4][:-1] + b',"kind":"session_stop"}'
    trail.write_bytes(b"\n".join(lines))
    v = verify(trail)
    assert not v.ok and v.problem is not None and v.problem.startswith("line 5: not an audit")


def test_time_is_taken_with_seq_so_it_never_goes_back(tmp_path: Path) -> None:
    """Two writers whose callers' clocks disagree: the trail's times still rise with seq;
    a clock really set back is said, not failed."""
    path = tmp_path / "audit.jsonl"
    ticks = itertools.count(1000, 10)
    a, b = (AuditTrail(path, clock=lambda: next(ticks)) for _ in range(2))
    for k in range(6):
        (a if k % 2 else b).append("session_start", "x", {"k": k})
    times = [e["time_ns"] for e in entries(path)]
    assert times == sorted(times) and verify(path).notes == []
    AuditTrail(path, clock=lambda: 5).append("session_stop", "x", {})
    v = verify(path)
    assert v.ok and v.notes == [
        "entry 7: written 0.000 s before entry 6 by the clock: the clock was set back"
    ]


def test_a_held_entry_keeps_when_it_happened(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    t = AuditTrail(path, clock=lambda: 10 * 10**9)
    t.append("session_start", "x", {}, happened_ns=1 * 10**9)
    t.append("session_stop", "x", {}, happened_ns=int(9.5 * 10**9))
    first, second = entries(path)
    assert first["what"]["happened_ns"] == 10**9 and "happened_ns" not in second["what"]


def test_the_daemons_head_entry_and_head_file_are_signed(tmp_path: Path) -> None:
    keys.keygen(tmp_path / "d.key", None)
    key = keys.load_private(tmp_path / "d.key", None)
    path = tmp_path / "audit.jsonl"
    daemon = AuditTrail(path, key)
    daemon.append("session_start", "daemon", {})
    before = daemon.head
    daemon.append(HEAD, "daemon", {"why": "stop"})
    head = entries(path)[-1]["what"]
    assert (head["seq"], head["sha256"]) == (1, before)
    assert keys.check(head, frozenset({keys.signer(head) or ""})) is None
    doc = json.loads(witness.head_file(path).read_text())
    assert doc["latest"]["seq"] == doc["signed"]["seq"] == 2
    assert keys.check(doc["signed"]) is None and doc["signed"]["sha256"] == daemon.head
    AuditTrail(path).append("report_made", "cli", {})  # a command: no key
    doc = json.loads(witness.head_file(path).read_text())
    assert doc["latest"]["seq"] == 3 and doc["signed"]["seq"] == 2, "the signed head kept"


def test_a_trail_no_daemon_signed_is_unsigned_never_ok(
    trail: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["audit", "verify", str(trail)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("UNSIGNED: nothing checked here is signed")
    assert out[-1].startswith("UNSIGNED: 5 entries chained, witnessed to entry 5")


def test_the_head_file_names_an_end_the_trail_lost_and_the_next_append_keeps_it(
    trail: Path,
) -> None:
    """A cut the next start would otherwise cover: the append says it in an entry."""
    lines = trail.read_bytes().split(b"\n")
    trail.write_bytes(b"\n".join(lines[:3]) + b"\n")
    AuditTrail(trail).append("daemon_start", "daemon", {})
    cut, start = entries(trail)[3:]
    assert cut["kind"] == "trail_cut" and start["kind"] == "daemon_start"
    assert cut["what"]["head_file"]["latest"]["seq"] == 5
    assert cut["what"]["trail_ended_at"]["seq"] == 3


def daemon_trail(tmp_path: Path) -> tuple[Path, AuditTrail]:
    keys.keygen(tmp_path / "d.key", None)
    path = tmp_path / "audit.jsonl"
    daemon = AuditTrail(path, keys.load_private(tmp_path / "d.key", None))
    for kind in ("daemon_start", HEAD, "daemon_stop", HEAD):
        daemon.append(kind, "daemon", {})
    return path, daemon


@pytest.mark.parametrize("how", ["deleted", "garbled", "unsigned", "overflowing"])
def test_a_head_file_lost_before_a_start_is_kept_in_the_trail(tmp_path: Path, how: str) -> None:
    """The tail cut and the head file deleted (or spoilt) before the next start: the
    start cannot tell what was cut, but it says the witness was gone, and that fails."""
    path, daemon = daemon_trail(tmp_path)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:2]) + b"\n")
    head = witness.head_file(path)
    doc = json.loads(head.read_text())
    if how == "deleted":
        head.unlink()
    elif how == "garbled":
        head.write_text("{")
    elif how == "unsigned":
        head.write_text(json.dumps({**doc, "signed": None, "latest": None}))
    else:
        head.write_text(json.dumps(doc).replace('"seq": 4', '"seq": 1e400'))
    AuditTrail(path, daemon.key).append("daemon_start", "daemon", {})  # the next start
    cut = entries(path)[2]
    assert cut["kind"] == "trail_cut"
    tally = trust.Tally(frozenset())
    trail_check.check(path, tally)
    (said,) = [p for p in tally.problems if "(trail_cut)" in p]
    assert said.startswith("entry 3 (trail_cut): as it was written, the head file was ")
    assert said.endswith("though the daemon had written it: deleted or rewritten")


def test_a_line_that_is_no_entry_is_named_and_the_next_append_follows_it(trail: Path) -> None:
    with trail.open("ab") as f:
        f.write(b'{"seq":6,"prev":"' + b"0" * 64 + b'","time_ns":1}\n')
    assert verify(trail).problem == (
        "line 6: not an audit entry (only the last line may be torn by a crash: this one "
        "was edited or put here)"
    )
    AuditTrail(trail).append("report_made", "cli", {})
    assert entries(trail)[-1]["seq"] == 7, "the next append takes the seq after it"
    assert verify(trail).problem is not None and verify(trail).problem.startswith("line 6:")
