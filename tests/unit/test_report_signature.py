"""``pvlog sign`` and ``pvlog verify``: the printed name, UTC time and meaning shown; a
report edited after signing and a signature moved to another report fail, each in one
line; the signature is an entry of the audit trail, and no trail means no signature;
OK only for a key named as trusted (``--key``, or ``audit.trusted_keys`` with ``-c``);
a PDF's signed copy shows every signature. The attacks on a signed report:
test_signature_tampering.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from daemon import cli
from daemon.audit import keys, tool_entry, trust
from daemon.audit.trail import verify as verify_trail
from daemon.reports import signature_page
from daemon.tools import signing

PHRASE = "lab key 2026"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(UTC\)"


def pdf_report(path: Path, pages: int = 2, title: str = "Lot L7") -> Path:
    """A report as ``pvlog report --lot --pdf`` makes one: matplotlib's PDF backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        for n in range(1, pages + 1):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.1, 0.9, f"{title}: page {n}, burst 18.2 atm")
            pdf.savefig(fig)
            plt.close(fig)
    return path


def sign(report: Path, meaning: str, signer: str, key: Path, *more: str) -> int:
    return cli.main(["sign", str(report), "--meaning", meaning, "--signer", signer,
                     "--key", str(key), *more])  # fmt: skip


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
    report = pdf_report(tmp_path / "lot-L7.pdf")
    assert sign(report, "reviewed", "Jane Roe", signer) == 0
    said = capsys.readouterr().out
    assert re.fullmatch(rf"{report}: reviewed by Jane Roe at {STAMP}, key ed25519:\S+\.\.\., "
                        rf"signature 1 in {report}\.sig; signed copy {tmp_path}/lot-L7\.signed"
                        rf"\.pdf; recorded in {tmp_path}/audit\.jsonl\n", said)  # fmt: skip
    assert sign(report, "approved", "Max Mustermann", signer) == 0
    capsys.readouterr()
    assert cli.main(["verify", str(report), "--key", f"{signer}.pub"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"OK reviewed by Jane Roe at {STAMP}, key ed25519:\S+\.\.\.", out[0])
    assert re.fullmatch(rf"OK approved by Max Mustermann at {STAMP}, key ed25519:\S+", out[1])
    assert out[2:] == [
        "note: checked lot-L7.signed.pdf: the report's pages and a page showing these 2 "
        "signature(s)",
        f"note: checked the audit trail {tmp_path / 'audit.jsonl'}: it records 2 signature(s) "
        "of lot-L7.pdf, each in lot-L7.pdf.sig",
    ]
    trail = tmp_path / "audit.jsonl"
    entries = [json.loads(line) for line in trail.read_text().splitlines()]
    made = [e for e in entries if e["kind"] == "signature_made"]
    assert [(e["what"]["meaning"], e["what"]["n"]) for e in made] == [
        ("reviewed", 1), ("approved", 2)]  # fmt: skip
    what = made[1]["what"]
    assert what["report"] == str(report) and what["sig_file"] == f"{report}.sig"
    assert what["signed_copy"] == str(tmp_path / "lot-L7.signed.pdf")
    assert {"report_sha256", "signer", "signed_at", "key", "signature_sha256",
            "signed_copy_sha256"} <= set(what)  # fmt: skip
    assert verify_trail(trail).ok
    doc = json.loads(signing.signatures_of(report).read_text())
    assert doc["format"] == "pvlog-signature/2" and len(doc["signatures"]) == 2
    assert [s["n"] for s in doc["signatures"]] == [1, 2]
    assert doc["signatures"][0]["prev"] == "0" * 64
    assert what["signature_sha256"] == keys_hash(doc["signatures"][1])
    assert doc["signatures"][1]["prev"] == keys_hash(doc["signatures"][0])


def keys_hash(sig: dict[str, object]) -> str:
    import hashlib

    text = json.dumps(sig, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_verify_without_a_trusted_key_says_untrusted_never_ok(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "lot-L7.json"
    report.write_text('{"rbp_atm": 18.2}')
    assert sign(report, "reviewed", "Jane Roe", signer, "--trail", str(tmp_path / "t")) == 2
    (tmp_path / "t").touch()
    assert sign(report, "reviewed", "Jane Roe", signer, "--trail", str(tmp_path / "t")) == 0
    capsys.readouterr()
    assert cli.main(["verify", str(report)]) == trust.UNTRUSTED == 3
    out = capsys.readouterr().out.splitlines()
    fingerprint = keys.fingerprint(keys.load_public(Path(f"{signer}.pub")))
    assert re.fullmatch(
        rf"UNTRUSTED reviewed by Jane Roe at {STAMP}: signed by {fingerprint}, a key you did "
        r"not name as trusted \(--key, or audit.trusted_keys with -c\)", out[0])  # fmt: skip
    assert out[1] == (
        "note: no audit trail checked (none given (-c CONFIG or --trail PATH) "
        "nor beside lot-L7.json): the last signature's removal cannot be seen"
    )
    assert not any(line.startswith("OK") for line in out)
    assert cli.main(["verify", str(report), "--trail", str(tmp_path / "t")]) == 3
    assert capsys.readouterr().out.splitlines()[1] == (
        f"note: checked the audit trail {tmp_path / 't'}: it records 1 signature(s) of "
        "lot-L7.json, each in lot-L7.json.sig")  # fmt: skip


def test_trust_and_the_trail_come_from_the_configuration(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "reports" / "lot-L7.json"
    report.parent.mkdir()
    report.write_text('{"rbp_atm": 18.2}')
    trail = tmp_path / "var" / "audit.jsonl"
    config = tmp_path / "pvlog.toml"
    config.write_text(f'[audit]\npath = "{trail}"\ntrusted_keys = ["{signer}.pub"]\n')
    assert sign(report, "approved", "Jane Roe", signer, "-c", str(config)) == 0
    assert [json.loads(line)["kind"] for line in trail.read_text().splitlines()] == [
        "signature_made"]  # fmt: skip
    capsys.readouterr()
    assert cli.main(["verify", str(report), "-c", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("OK approved by Jane Roe at ") and f"trail {trail}:" in out[1]
    other = tmp_path / "mallory.key"
    keys.keygen(other, PHRASE)
    config.write_text(f'[audit]\npath = "{trail}"\ntrusted_keys = ["{other}.pub"]\n')
    assert cli.main(["verify", str(report), "-c", str(config)]) == 1
    assert capsys.readouterr().out.startswith(
        "FAIL signature 1: signed by ed25519:")  # fmt: skip
    config.write_text("[audit]\nenabled = false\n")
    assert sign(report, "approved", "Jane Roe", signer, "-c", str(config)) == 1
    assert capsys.readouterr().err == (
        f"pvlog sign: no audit trail to record the signature in: {config} keeps none "
        "(audit.enabled = false): give --trail PATH\n")  # fmt: skip


def test_an_edited_report_and_a_moved_signature_fail(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.jsonl").touch()
    report, other = tmp_path / "lot-L7.json", tmp_path / "lot-L8.json"
    report.write_text('{"rbp_atm": 18.2}')
    other.write_text('{"rbp_atm": 14.0}')
    assert sign(report, "approved", "Jane Roe", signer) == 0
    signing.signatures_of(other).write_bytes(signing.signatures_of(report).read_bytes())
    capsys.readouterr()
    assert cli.main(["verify", str(other)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "FAIL signature 1: a signature moved here: it signs 'lot-L7.json', not 'lot-L8.json'"
    )
    report.write_text('{"rbp_atm": 19.2}')
    assert cli.main(["verify", str(report)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        "FAIL signature 1: lot-L7.json changed after it was signed (its SHA-256 differs)"
    )
    report.write_text('{"rbp_atm": 18.2}')
    assert cli.main(["verify", str(report)]) == 3
    doc = json.loads(signing.signatures_of(report).read_text())
    doc["signatures"][0]["signer"] = "Someone Else"
    signing.signatures_of(report).write_text(json.dumps(doc))
    capsys.readouterr()
    assert cli.main(["verify", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL signature 1: signature by ed25519:")
    assert out[0].endswith("does not match: edited after signing")
    when = STAMP[: -len(r" \(UTC\)")]
    assert re.fullmatch(rf"FAIL the audit trail records signature 1 \(approved by Jane Roe at "
                        rf"{when}\), which lot-L7.json.sig no longer holds", out[1])  # fmt: skip


def test_sign_refuses_a_key_without_a_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.jsonl").touch()
    keys.keygen(tmp_path / "plain.key", None)
    report = pdf_report(tmp_path / "r.pdf", pages=1)
    assert sign(report, "approved", "Jane Roe", tmp_path / "plain.key") == 2
    assert "must be protected by a passphrase" in capsys.readouterr().err
    assert not signing.signatures_of(report).exists()


def test_a_trail_that_cannot_be_written_signs_nothing(
    tmp_path: Path,
    signer: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "audit.jsonl").touch()
    report = pdf_report(tmp_path / "lot-L7.pdf", pages=1)
    monkeypatch.setattr(tool_entry, "note", lambda *_: False)
    assert sign(report, "approved", "Jane Roe", signer) == 1
    assert capsys.readouterr().err == (
        f"pvlog sign: the audit trail {tmp_path / 'audit.jsonl'} cannot be written: nothing "
        "signed\n")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.jsonl", "jane.key", "jane.key.pub", "lot-L7.pdf"]  # fmt: skip


def test_a_name_the_page_cannot_print_and_a_pdf_that_is_not_one_are_refused(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.jsonl").touch()
    report = pdf_report(tmp_path / "lot-L7.pdf", pages=1)
    with pytest.raises(SystemExit) as exit_:
        sign(report, "approved", "李华", signer)
    assert exit_.value.code == 2
    assert "--signer: '李华' has a letter the signature page's fonts lack" in (
        capsys.readouterr().err)  # fmt: skip
    assert sign(report, "approved", "Jürgen Müller (QA)", signer) == 0
    copy = signature_page.copy_of(report)
    assert "Printed name: Jürgen Müller (QA)" in signature_page._read(copy).pages[-1].extract_text()
    fake = tmp_path / "fake.pdf"
    fake.write_bytes(b"%PDF-1.4 the lot's results")
    assert sign(fake, "approved", "Jane Roe", signer) == 1
    assert capsys.readouterr().err.startswith(
        "pvlog sign: fake.pdf: not a PDF that can be read (")  # fmt: skip
    assert not signing.signatures_of(fake).exists() and not signature_page.copy_of(fake).exists()


def test_a_version_1_file_is_still_checked_but_never_added_to(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.jsonl").touch()
    report = tmp_path / "lot-L7.json"
    report.write_text('{"rbp_atm": 18.2}')
    key = keys.load_private(signer, PHRASE)
    records = []
    for meaning in ("reviewed", "approved"):
        record = {"format": "pvlog-signature/1", "report": report.name,
                  "report_sha256": signing.sha256_file(report), "report_bytes": 17,
                  "signer": "Jane Roe", "meaning": meaning, "signed_at": "2025-03-01T10:00:00Z",
                  "time_ns": 1740823200 * 10**9, "pvlog_version": "0.1.0"}  # fmt: skip
        record["signature"] = keys.sign(key, record)
        records.append(json.dumps(record, sort_keys=True))
    signing.signatures_of(report).write_text("\n".join(records) + "\n")
    assert cli.main(["verify", str(report), "--key", f"{signer}.pub"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "OK reviewed by Jane Roe at 2025-03-01T10:00:00Z (UTC), key " + (
        keys.fingerprint(keys.load_public(Path(f"{signer}.pub")))[:23] + "..."
    )
    assert out[2] == ("note: lot-L7.json.sig is pvlog-signature/1: its signatures are not "
                      "chained, so one removed cannot be seen (a pvlog-signature/2 file begun "
                      "anew is)")  # fmt: skip
    before = signing.signatures_of(report).read_bytes()
    assert sign(report, "approved", "Max Mustermann", signer) == 1
    assert capsys.readouterr().err == (
        "pvlog sign: lot-L7.json.sig holds pvlog-signature/1 records, which are not chained: "
        "move it aside (keep it) and sign anew\n")  # fmt: skip
    assert signing.signatures_of(report).read_bytes() == before
    unsigned = json.loads(records[1])
    del unsigned["signature"]
    signing.signatures_of(report).write_text(f"{records[0]}\n{json.dumps(unsigned)}\n")
    assert cli.main(["verify", str(report)]) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        "FAIL signature 2: not signed (it has no signature block)")  # fmt: skip


def test_unusable_arguments_are_one_line_and_exit_2(
    tmp_path: Path, signer: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "lot-L7.json"
    report.write_text('{"rbp_atm": 18.2}')
    config = tmp_path / "pvlog.toml"
    config.write_text("[audit]\ntrusted_keys = [5]\n")
    for args in (["--trail", str(tmp_path / "nowhere.jsonl")], ["-c", str(config)],
                 ["--key", str(tmp_path / "nowhere.pub")]):  # fmt: skip
        assert cli.main(["verify", str(report), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pvlog verify: ") and err.count("\n") == 1, err
    assert sign(report, "approved", "Jane Roe", signer, "-c", str(config)) == 2
    err = capsys.readouterr().err
    assert err.startswith("pvlog sign: ") and err.count("\n") == 1, err
    assert not signing.signatures_of(report).exists()
