"""The records of a real run, tampered with every way the audit trail, the manifests
and the keys are meant to catch; each caught with its exit code and a message naming it.

Two runs of the daemon on a simulator (sessions L7-s01 and L7-s02, the daemon's key
signing manifests and the trail's head, InfluxDB taking each entry as ``pv_audit``)
leave a recordings directory. Each case copies it, makes one change an attacker or an
accident could, and runs ``pvlog audit verify`` and ``pvlog recording verify`` as QA
would. A report of the run, signed by two people, is tampered with too. One test: the run is
made once, and the cases follow one another on copies (InfluxDB's witness last, on
the records themselves).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daemon import cli
from daemon.audit import keys
from daemon.audit.trail import GENESIS, AuditTrail, line_hash
from daemon.audit.witness import head_file
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, finish, wait_for, write_config

pytestmark = pytest.mark.e2e

PHRASE = "bench lead 2026"
"""The passphrase of the two people's keys that sign a report of the run."""


@dataclass(frozen=True)
class Records:
    tmp: Path
    rec: Path
    config: Path
    pub: Path
    other_key: Path


def recorded_session(tmp: Path, rec: Path, name: str, influx: InfluxV1, key: Path) -> Path:
    """One run of the daemon recording session ``name``; returns its config."""
    run = tmp / name
    run.mkdir()
    sim = SimProcess(run, "pvs0", "--rate", "100", "--seed", "7")
    extra = (f'[recording]\ndir = "{rec}"\n'
             f'[audit]\nsigning_key = "{key}"\nhead_every_s = 1\n')  # fmt: skip
    cfg = write_config(run, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
    cfg.write_text(cfg.read_text().replace('name = "test"', f'name = "{name}"'))
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        wait_for(lambda: any((rec / name).glob("*.mcap")), 30, "a recording")
        trail = rec / "audit.jsonl"
        heads = trail.read_text().count('"kind":"trail_head"')
        wait_for(lambda: trail.read_text().count('"kind":"trail_head"') > heads, 30,
                 "a periodic head")  # fmt: skip
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()
    return cfg


@pytest.fixture
def records(influxd: PrivateInfluxd) -> Iterator[Records]:
    tmp = Path(tempfile.mkdtemp(prefix="pvl-"))
    try:
        rec = tmp / "rec"
        key, other = tmp / "daemon.key", tmp / "other.key"
        keys.keygen(key, None)
        keys.keygen(other, None)
        influx = InfluxV1(influxd.url, f"tamper_{time.monotonic_ns()}")
        recorded_session(tmp, rec, "L7-s01", influx, key)
        cfg = recorded_session(tmp, rec, "L7-s02", influx, key)
        yield Records(tmp, rec, cfg, Path(f"{key}.pub"), other)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lines_of(trail: Path) -> list[bytes]:
    return trail.read_bytes().split(b"\n")[:-1]


def rechained(entries: list[dict[str, Any]], start: int = 0, prev: str = GENESIS) -> list[bytes]:
    """Entries from ``start`` with every hash recomputed, as someone without the key does."""
    out = []
    for entry in entries[start:]:
        e = {k: v for k, v in entry.items() if k != "sha256"} | {"prev": prev}
        line = json.dumps(e, sort_keys=True, separators=(",", ":")).encode()
        out.append(line)
        prev = line_hash(line + b"\n")
    return out


def write_lines(trail: Path, lines: list[bytes]) -> None:
    trail.write_bytes(b"".join(line + b"\n" for line in lines))


def forge_latest(rec: Path) -> None:
    """The head file's unsigned part made to match the tampered trail."""
    trail = rec / "audit.jsonl"
    last = lines_of(trail)[-1]
    doc = json.loads(head_file(trail).read_text())
    doc["latest"] |= {"seq": json.loads(last)["seq"], "sha256": line_hash(last + b"\n")}
    head_file(trail).write_text(json.dumps(doc))


def edit_middle(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    lines[3] = lines[3].replace(b'"who":"daemon', b'"who":"mallory', 1)
    write_lines(rec / "audit.jsonl", lines)


def delete_middle(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    write_lines(rec / "audit.jsonl", lines[:4] + lines[5:])


def reorder(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    lines[4], lines[5] = lines[5], lines[4]
    write_lines(rec / "audit.jsonl", lines)


def duplicate(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    write_lines(rec / "audit.jsonl", [*lines[:6], lines[5], *lines[6:]])


def cut_tail(rec: Path) -> None:
    write_lines(rec / "audit.jsonl", lines_of(rec / "audit.jsonl")[:-2])


def cut_tail_and_forge(rec: Path) -> None:
    cut_tail(rec)
    forge_latest(rec)


def edit_last(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    entry = json.loads(lines[-1])
    entry["what"]["why"] = "a forged why"
    lines[-1] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    write_lines(rec / "audit.jsonl", lines)


def rewrite_after_last_anchor(rec: Path) -> None:
    """The daemon's stop entry changed, everything after it re-chained, and the head
    file's unsigned part made to match: the signed head still names the old end."""
    trail = rec / "audit.jsonl"
    entries = [json.loads(line) for line in lines_of(trail)]
    at = max(i for i, e in enumerate(entries) if e["kind"] == "daemon_stop")
    entries[at]["what"]["why"] = "power cut"
    prev = line_hash(lines_of(trail)[at - 1] + b"\n")
    write_lines(trail, lines_of(trail)[:at] + rechained(entries, at, prev))
    forge_latest(rec)


def rewrite_whole(rec: Path) -> None:
    trail = rec / "audit.jsonl"
    entries = [json.loads(line) for line in lines_of(trail)]
    entries[2]["who"] = "mqtt (mqtt user mallory)"
    write_lines(trail, rechained(entries))
    forge_latest(rec)


def torn_mid_trail(rec: Path) -> None:
    lines = lines_of(rec / "audit.jsonl")
    write_lines(rec / "audit.jsonl", [*lines[:5], b'{"seq":6,"time_ns":17', *lines[5:]])


def delete_session(rec: Path) -> None:
    shutil.rmtree(rec / "L7-s01")


def rename_session(rec: Path) -> None:
    (rec / "L7-s01").rename(rec / "L7-s09")


def swap_files(rec: Path) -> None:
    (a,), (b,) = (sorted((rec / s).glob("*.mcap"))[:1] for s in ("L7-s01", "L7-s02"))
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)


def manifest_of(rec: Path, session: str) -> Path:
    return next((rec / session).glob("*.manifest.json"))


def resign(rec: Path, key: Path | None) -> None:
    """The manifest of L7-s01 made to say a file is unhashed... and signed by ``key``
    (None: its signature removed)."""
    path = manifest_of(rec, "L7-s01")
    doc = json.loads(path.read_text())
    doc.pop("signature")
    doc["session_tags"]["operator"] = "mallory"
    if key is not None:
        doc["signature"] = keys.sign(keys.load_private(key, None), doc)
    path.write_text(json.dumps(doc, indent=2))


def duplicate_key(rec: Path) -> None:
    path = manifest_of(rec, "L7-s01")
    text = path.read_text()
    path.write_text(text.replace('"complete": true,', '"complete": false, "complete": true,', 1))


def unsigned_head(rec: Path) -> None:
    """The head file's latest part forged, its signed part removed."""
    forge_latest(rec)
    head = head_file(rec / "audit.jsonl")
    doc = json.loads(head.read_text())
    del doc["signed"]
    head.write_text(json.dumps(doc))


def cut_with_unsigned_head(rec: Path) -> None:
    """The tail cut, and the head file's signed part, which names the cut end, removed."""
    cut_tail(rec)
    unsigned_head(rec)


def rewrite_with_blind_head(rec: Path) -> None:
    """The stop's entry forged, the head entry after it made to name nothing, the rest
    re-chained, the head file's signed part removed and its latest forged."""
    trail = rec / "audit.jsonl"
    entries = [json.loads(line) for line in lines_of(trail)]
    at = max(i for i, e in enumerate(entries) if e["kind"] == "daemon_stop")
    entries[at]["what"]["why"] = "power cut"
    del entries[at + 1]["what"]["seq"]
    prev = line_hash(lines_of(trail)[at - 1] + b"\n")
    write_lines(trail, lines_of(trail)[:at] + rechained(entries, at, prev))
    unsigned_head(rec)


def cut_then_restarted(rec: Path) -> None:
    """The tail cut, then the next start appends: it keeps what the head file said."""
    cut_tail(rec)
    AuditTrail(rec / "audit.jsonl").append("daemon_start", "daemon (os user pvlog)", {})


def planted_trail(rec: Path) -> None:
    """A recording of L7-s02 deleted, and an empty trail put in its folder."""
    next((rec / "L7-s02").glob("*.mcap")).unlink()
    (rec / "L7-s02" / "audit.jsonl").touch()


def trail_deleted(rec: Path) -> None:
    (rec / "audit.jsonl").unlink()
    head_file(rec / "audit.jsonl").unlink()
    shutil.rmtree(rec / "L7-s01")


@dataclass(frozen=True)
class Case:
    name: str
    tamper: Callable[[Path], None]
    command: str  # "audit" or "recording"
    code: int
    said: str
    keyed: bool = True
    target: str = ""
    """A folder under the records to check (``recording``); ``-c``: with a config."""


CASES = [
    Case("an entry edited", edit_middle, "audit", 1, "does not follow entry 4"),
    Case("an entry deleted", delete_middle, "audit", 1, "entry 5 (line 5): says seq 6"),
    Case("two entries reordered", reorder, "audit", 1, "entry 5 (line 5): says seq 6"),
    Case("an entry duplicated", duplicate, "audit", 1, "entry 7 (line 7): says seq 6"),
    Case("the tail cut", cut_tail, "audit", 1, "cut from its end"),
    Case("the tail cut, the head file forged", cut_tail_and_forge, "audit", 1,
         "cut from its end"),
    Case("the last entry edited", edit_last, "audit", 1, "the last entry edited"),
    Case("a rewrite after the last anchor", rewrite_after_last_anchor, "audit", 1,
         "(signed) names entry"),
    Case("the trail rewritten whole", rewrite_whole, "audit", 1, "rewritten from there"),
    Case("a torn fragment mid-trail", torn_mid_trail, "audit", 1,
         "line 6: not an audit entry (only the last line may be torn"),
    Case("a session deleted (audit)", delete_session, "audit", 1, "L7-s01/: missing"),
    Case("a session deleted (recording)", delete_session, "recording", 1, "L7-s01/: missing"),
    Case("a session renamed (audit)", rename_session, "audit", 1, "L7-s01/: missing"),
    Case("a session renamed (recording)", rename_session, "recording", 1,
         "is in the folder 'L7-s09': moved or renamed"),
    Case("files swapped (audit)", swap_files, "audit", 1, "altered or swapped"),
    Case("files swapped (recording)", swap_files, "recording", 1, "altered or swapped"),
    Case("a manifest re-signed by another key", lambda r: None, "recording", 1,
         "which is not a trusted key"),
    Case("an unsigned manifest", lambda r: resign(r, None), "recording", 1, ": not signed"),
    Case("an unsigned manifest (audit)", lambda r: resign(r, None), "audit", 1, ": not signed"),
    Case("duplicate keys in a manifest", duplicate_key, "recording", 1,
         "the key 'complete' is given twice"),
    Case("the tail cut, the head file's signed part removed", cut_with_unsigned_head, "audit",
         1, "has no signed head"),
    Case("a rewrite with a head entry made blind", rewrite_with_blind_head, "audit", 1,
         "names no entry (edited)"),
    Case("the tail cut, then the next start", cut_then_restarted, "audit", 1, "(trail_cut)"),
    Case("an entry deleted (recording)", delete_middle, "recording", 1, "does not verify"),
    Case("a file deleted, a trail planted beside it", planted_trail, "recording", 1,
         "missing: the trail's entry", target="L7-s02"),
    Case("the trail deleted, and a session", trail_deleted, "recording", 1,
         "named by the configuration: missing", target="-c"),
    Case("no trusted key (audit)", lambda r: None, "audit", 3, "UNTRUSTED", keyed=False),
    Case("no trusted key (recording)", lambda r: None, "recording", 3, "UNTRUSTED", keyed=False),
]  # fmt: skip


def check(command: str, rec: Path, pub: Path | None, target: str = "") -> list[str]:
    key = [] if pub is None else ["--key", str(pub)]
    if target == "-c":  # a configuration naming these records
        original = next(rec.parent.parent.glob("L7-s02/pvlog.toml")).read_text()
        config = rec.parent / "pvlog.toml"
        config.write_text(original.replace(str(rec.parent.parent / "rec"), str(rec)))
        return [command, "verify", str(rec), "-c", str(config), *key]
    where = [str(rec / "audit.jsonl")] if command == "audit" else [str(rec / target)]
    return [command, "verify", *where, *key]


def test_every_tamper_is_caught_and_named(
    records: Records, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in ("audit", "recording"):  # the untouched records first: whole, trusted
        capsys.readouterr()
        assert cli.main(check(command, records.rec, records.pub)) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.splitlines()[-1].startswith("OK: ")
    # ...and the trail witnessed to its very end, by the head file among others.
    capsys.readouterr()
    assert cli.main(["audit", "verify", "-c", str(records.config), "--key", str(records.pub)]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    ok = r"OK: (\d+) entries chained, witnessed to entry \1 \((.*)\); signed by (\S+) \(trusted\)"
    found = re.fullmatch(ok, said)
    assert found is not None, said
    assert found[3] == keys.fingerprint(keys.load_public(records.pub))
    assert {w.rsplit(" ", 1)[0] for w in found[2].split(", ")} == {
        "InfluxDB", "manifests", "the head file", "trail_head entries"}  # fmt: skip
    other_case = next(c for c in CASES if c.name == "a manifest re-signed by another key")
    missed = []
    for case in CASES:
        copy = records.tmp / "copy" / "rec"
        shutil.rmtree(copy.parent, ignore_errors=True)
        shutil.copytree(records.rec, copy)
        if case is other_case:
            resign(copy, records.other_key)
        else:
            case.tamper(copy)
        capsys.readouterr()
        code = cli.main(check(case.command, copy, records.pub if case.keyed else None,
                              case.target))  # fmt: skip
        out = capsys.readouterr().out
        if code != case.code or case.said not in out:
            missed.append(f"{case.name}: exit {code} (wanted {case.code}), said:\n{out}")
    assert not missed, "\n\n".join(missed)
    monkeypatch.setenv("PVLOG_KEY_PASSPHRASE", PHRASE)
    signatures_on_a_report_of_the_run(records, capsys)
    influxdb_witnesses_an_end_cut_with_its_head_file(records, capsys)


def signatures_on_a_report_of_the_run(records: Records, capsys: pytest.CaptureFixture[str]) -> None:
    """A report of the run (a PDF plot), signed by two people with -c: each signature
    removed (the last too), reordered or copied, the report changed, the record not
    UTF-8, or the signed copy edited, is caught."""
    report = records.tmp / "L7-s01-report.pdf"
    made = cli.main(["report", str(records.rec / "L7-s01"), "--plot", str(report)])
    assert made in (0, 1) and report.is_file()
    people = {}
    for name in ("jane", "max"):
        people[name] = records.tmp / f"{name}.key"
        keys.keygen(people[name], PHRASE)
    for name, meaning, signer in (("jane", "reviewed", "Jane Roe"),
                                  ("max", "approved", "Max Mustermann")):  # fmt: skip
        signed = cli.main(["sign", str(report), "--meaning", meaning, "--signer", signer,
                           "--key", str(people[name]), "-c", str(records.config)])  # fmt: skip
        assert signed == 0
    sig = report.with_name(report.name + ".sig")
    copy = report.with_name("L7-s01-report.signed.pdf")
    trusted = [a for k in people.values() for a in ("--key", f"{k}.pub")]
    whole = {p: p.read_bytes() for p in (report, sig, copy)}

    def verdict() -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(["verify", str(report), *trusted, "-c", str(records.config)])
        return code, capsys.readouterr().out

    assert verdict()[0] == 0
    doc = json.loads(whole[sig])
    first, second = doc["signatures"]

    def with_signatures(signatures: list[dict[str, Any]]) -> None:
        sig.write_text(json.dumps({**doc, "signatures": signatures}))

    cases: list[tuple[str, Callable[[], None], str]] = [
        ("the first signature removed", lambda: with_signatures([second]), "stands first"),
        ("the last signature removed", lambda: with_signatures([first]),
         "the audit trail records signature 2 (approved by Max Mustermann"),
        ("signatures reordered", lambda: with_signatures([second, first]), "FAIL signature"),
        ("a signature copied", lambda: with_signatures([first, first, second]),
         "is here twice (copied)"),
        ("the report changed", lambda: report.write_bytes(whole[report] + b"\n"),
         "changed after it was signed"),
        ("the record not UTF-8", lambda: sig.write_bytes(b"\xff" + whole[sig]), "not UTF-8"),
        ("the signed copy edited", lambda: copy.write_bytes(whole[copy][:-40]),
         "L7-s01-report.signed.pdf"),
    ]  # fmt: skip
    missed = []
    for name, tamper, said in cases:
        for path, data in whole.items():
            path.write_bytes(data)
        tamper()
        code, out = verdict()
        if code != 1 or said not in out:
            missed.append(f"{name}: exit {code}, said:\n{out}")
    for path, data in whole.items():
        path.write_bytes(data)
    assert not missed, "\n\n".join(missed)


def influxdb_witnesses_an_end_cut_with_its_head_file(
    records: Records, capsys: pytest.CaptureFixture[str]
) -> None:
    """The trail's end and the head file both cut: InfluxDB's pv_audit still names the
    head the daemon sent before it stopped."""
    trail = records.rec / "audit.jsonl"
    lines = lines_of(trail)
    stopped = max(i for i, line in enumerate(lines) if b'"kind":"daemon_stop"' in line)
    at = max(i for i, line in enumerate(lines[:stopped]) if b'"kind":"trail_head"' in line)
    write_lines(trail, lines[:at])
    head_file(trail).unlink()
    capsys.readouterr()
    assert cli.main(["audit", "verify", "-c", str(records.config), "--key", str(records.pub)]) == 1
    out = capsys.readouterr().out
    assert f"InfluxDB's pv_audit (seq {at + 1}) names entry {at + 1}" in out, out
    assert "cut from its end" in out
