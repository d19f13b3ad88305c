"""``pvlog sign`` and ``pvlog verify``: the printed name, UTC time and meaning shown; a
report edited after signing and a signature moved to another report fail, each in one
line; the signature is an entry of the audit trail beside the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from daemon import cli
from daemon.audit import keys
from daemon.audit.trail import verify as verify_trail
from daemon.tools import signing

PHRASE = "lab key 2026"


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(signing.PASSPHRASE_ENV, PHRASE)
    key = tmp_path / "jane.key"
    keys.keygen(key, PHRASE)
    return key


def test_a_signed_report_shows_who_when_and_why(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.jsonl").touch()  # the recordings' trail, beside the report
    report = tmp_path / "lot-L7.pdf"
    report.write_bytes(b"%PDF-1.4 the lot's results")
    assert cli.main(["sign", str(report), "--meaning", "reviewed", "--signer", "Jane Roe",
                         "--key", str(signer)]) == 0  # fmt: skip
    assert cli.main(["sign", str(report), "--meaning", "approved", "--signer", "Max Mustermann",
                         "--key", str(signer)]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["verify", str(report), "--key", f"{signer}.pub"]) == 0
    out = capsys.readouterr().out.splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(UTC\)"
    assert re.fullmatch(rf"OK reviewed by Jane Roe at {stamp}, key ed25519:\S+\.\.\.", out[0])
    assert re.fullmatch(rf"OK approved by Max Mustermann at {stamp}, key ed25519:\S+", out[1])
    trail = tmp_path / "audit.jsonl"
    entries = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [(e["kind"], e["what"]["meaning"]) for e in entries] == [
        ("signature_made", "reviewed"), ("signature_made", "approved")]  # fmt: skip
    assert verify_trail(trail).ok


def test_an_edited_report_and_a_moved_signature_fail(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, other = tmp_path / "lot-L7.json", tmp_path / "lot-L8.json"
    report.write_text('{"rbp_atm": 18.2}')
    other.write_text('{"rbp_atm": 14.0}')
    assert cli.main(["sign", str(report), "--meaning", "approved", "--signer", "Jane Roe",
                         "--key", str(signer)]) == 0  # fmt: skip
    signing.signatures_of(other).write_bytes(signing.signatures_of(report).read_bytes())
    capsys.readouterr()
    assert cli.main(["verify", str(other)]) == 1
    assert capsys.readouterr().out == (
        "FAIL signature 1: a signature moved here: it signs 'lot-L7.json', not 'lot-L8.json'\n"
    )
    report.write_text('{"rbp_atm": 19.2}')
    assert cli.main(["verify", str(report)]) == 1
    assert capsys.readouterr().out == (
        "FAIL signature 1: lot-L7.json changed after it was signed (its SHA-256 differs)\n"
    )
    report.write_text('{"rbp_atm": 18.2}')
    assert cli.main(["verify", str(report)]) == 0
    record = json.loads(signing.signatures_of(report).read_text())
    record["signer"] = "Someone Else"
    signing.signatures_of(report).write_text(json.dumps(record) + "\n")
    assert cli.main(["verify", str(report)]) == 1
    assert "edited after signing" in capsys.readouterr().out


def test_sign_refuses_a_key_without_a_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys.keygen(tmp_path / "plain.key", None)
    report = tmp_path / "r.pdf"
    report.write_bytes(b"%PDF")
    rc = cli.main(["sign", str(report), "--meaning", "approved", "--signer", "Jane Roe",
                       "--key", str(tmp_path / "plain.key")])  # fmt: skip
    assert rc == 2
    assert "must be protected by a passphrase" in capsys.readouterr().err
    assert not signing.signatures_of(report).exists()
