"""Each attack on a signed report, made on a real one (a PDF made with matplotlib,
signed three times with two keys), and caught by ``pvlog verify`` with its exit code
and the one line naming it: a signature removed (first, middle, last: the last
through the audit trail), moved, copied, re-signed, the report or its signed copy
edited (to show something else too), the signature file damaged; and ``pvlog sign``
with no trail to record in."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter
from pypdf.annotations import FreeText
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, NameObject, NumberObject

from daemon import cli
from daemon.audit import keys
from daemon.reports import signature_page
from daemon.tools import signing
from tests.unit.test_report_signature import PHRASE, STAMP, pdf_report, sign

WHEN = STAMP[: -len(r" \(UTC\)")]


@dataclass
class Signed:
    report: Path
    keys: dict[str, Path]
    older_copy: bytes
    """The signed copy as the second signature left it."""

    @property
    def sig(self) -> Path:
        return signing.signatures_of(self.report)

    @property
    def copy(self) -> Path:
        return signature_page.copy_of(self.report)

    @property
    def trail(self) -> Path:
        return self.report.parent / "audit.jsonl"

    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.sig.read_text()))

    def save(self, doc: dict[str, Any]) -> None:
        self.sig.write_text(json.dumps(doc, indent=1))

    def fingerprint(self, who: str) -> str:
        return keys.fingerprint(keys.load_public(Path(f"{self.keys[who]}.pub")))


@pytest.fixture
def signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signed:
    monkeypatch.setenv(signing.PASSPHRASE_ENV, PHRASE)
    made = {who: tmp_path / f"{who}.key" for who in ("jane", "max", "mallory")}
    for key in made.values():
        keys.keygen(key, PHRASE)
    (tmp_path / "audit.jsonl").touch()
    report = pdf_report(tmp_path / "lot-L7.pdf")
    assert sign(report, "reviewed", "Jane Roe", made["jane"]) == 0
    assert sign(report, "reviewed", "Max Mustermann", made["max"]) == 0
    older = signature_page.copy_of(report).read_bytes()
    assert sign(report, "approved", "Max Mustermann", made["max"]) == 0
    return Signed(report, made, older)


def verify(
    s: Signed, capsys: pytest.CaptureFixture[str], *more: str, trusted: bool = True
) -> tuple[int, list[str]]:
    capsys.readouterr()
    named = ["--key", f"{s.keys['jane']}.pub", "--key", f"{s.keys['max']}.pub"]
    rc = cli.main(["verify", str(s.report), *(named if trusted else []), *more])
    return rc, capsys.readouterr().out.splitlines()


def fails(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def test_the_signed_report_verifies(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = verify(signed, capsys)
    assert rc == 0 and [line.split(" at ")[0] for line in out[:3]] == [
        "OK reviewed by Jane Roe", "OK reviewed by Max Mustermann",
        "OK approved by Max Mustermann"]  # fmt: skip
    assert out[3:] == [
        "note: checked lot-L7.signed.pdf: the report's pages and a page showing these 3 "
        "signature(s)",
        f"note: checked the audit trail {signed.trail}: it records 3 signature(s) of "
        "lot-L7.pdf, each in lot-L7.pdf.sig",
    ]


def test_verify_without_a_trusted_key_is_untrusted_never_ok(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out = verify(signed, capsys, trusted=False)
    assert rc == 3
    assert [line.split(": signed by ")[1].split(",")[0] for line in out[:3]] == [
        signed.fingerprint("jane"),
        signed.fingerprint("max"),
        signed.fingerprint("max"),
    ]
    assert re.fullmatch(rf"UNTRUSTED reviewed by Jane Roe at {STAMP}: signed by ed25519:[0-9a-f]"
                        r"{64}, a key you did not name as trusted \(--key, or "
                        r"audit.trusted_keys with -c\)", out[0])  # fmt: skip
    assert not [line for line in out if line.startswith("OK")]


@pytest.mark.parametrize(
    ("kept", "line"),
    [
        (
            [1, 2],
            "FAIL signature 2: stands first, but is not the first signature made (one "
            "removed, moved or copied)",
        ),
        ([0, 2], "FAIL signature 3: does not follow signature 1 (one removed, moved or copied)"),
    ],
    ids=["first", "middle"],
)
def test_a_signature_removed_breaks_the_chain(
    signed: Signed, capsys: pytest.CaptureFixture[str], kept: list[int], line: str
) -> None:
    doc = signed.doc()
    doc["signatures"] = [doc["signatures"][i] for i in kept]
    signed.save(doc)
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out)[0] == line
    gone = 1 if kept == [1, 2] else 2
    meaning = {1: "reviewed by Jane Roe", 2: "reviewed by Max Mustermann"}[gone]
    assert re.fullmatch(rf"FAIL the audit trail records signature {gone} \({meaning} at {WHEN}\),"
                        r" which lot-L7.pdf.sig no longer holds", fails(out)[-1])  # fmt: skip


def test_the_last_signature_removed_is_seen_by_the_trail_only(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = signed.doc()
    doc["signatures"].pop()
    doc |= {k: doc["signatures"][-1][k] for k in ("report_sha256", "report_bytes")}
    signed.save(doc)
    signed.copy.write_bytes(signed.older_copy)  # and the copy as it was then
    elsewhere = signed.trail.rename(signed.report.parent / "kept-away.jsonl")
    rc, out = verify(signed, capsys)
    assert rc == 0, "the file is whole without it: without the trail nothing shows"
    assert out[-1] == (
        "note: no audit trail checked (none given (-c CONFIG or --trail PATH) "
        "nor beside lot-L7.pdf): the last signature's removal cannot be seen"
    )
    rc, out = verify(signed, capsys, "--trail", str(elsewhere))
    assert rc == 1
    assert re.fullmatch(rf"FAIL the audit trail records signature 3 \(approved by Max "
                        rf"Mustermann at {WHEN}\), which lot-L7.pdf.sig no longer holds",
                        fails(out)[0])  # fmt: skip
    assert fails(out)[1:] == [
        "FAIL lot-L7.signed.pdf: not the copy signature 3 wrote (its SHA-256 is not the audit "
        "trail's): edited or replaced"]  # fmt: skip
    assert sign(signed.report, "approved", "Jane Roe", signed.keys["jane"], "--trail",
                str(elsewhere)) == 1  # fmt: skip
    assert "which lot-L7.pdf.sig no longer holds: not signing onto it" in capsys.readouterr().err


def test_the_last_signature_removed_alone_leaves_a_copy_that_shows_it(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = signed.doc()
    doc["signatures"].pop()
    signed.save(doc)
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out)[0] == (
        "FAIL lot-L7.signed.pdf: shows 3 signatures, lot-L7.pdf.sig holds 2: one removed from "
        "lot-L7.pdf.sig, or the copy edited")  # fmt: skip


def test_signatures_reordered_or_copied_fail(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = signed.doc()
    first, second, third = doc["signatures"]
    signed.save(doc | {"signatures": [first, third, second]})
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL signature 3: does not follow signature 1 (one removed, moved or copied)",
        "FAIL signature 2: does not follow signature 3 (one removed, moved or copied)",
    ]
    signed.save(doc | {"signatures": [first, second, third, second]})
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == ["FAIL signature 2: is here twice (copied)"]


def test_the_report_changed_after_signing_fails(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf_report(signed.report, title="Lot L7 (burst 19.2 atm)")
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        f"FAIL signature {n}: lot-L7.pdf changed after it was signed (its SHA-256 differs)"
        for n in (1, 2, 3)
    ]


def test_a_signature_moved_to_another_report_fails(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    other = pdf_report(signed.report.parent / "lot-L8.pdf", title="Lot L8")
    shutil.copy(signed.sig, signing.signatures_of(other))
    shutil.copy(signed.copy, signature_page.copy_of(other))
    capsys.readouterr()
    assert cli.main(["verify", str(other), "--key", f"{signed.keys['jane']}.pub"]) == 1
    assert fails(capsys.readouterr().out.splitlines())[0] == (
        "FAIL signature 1: a signature moved here: it signs 'lot-L7.pdf', not 'lot-L8.pdf'"
    )


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (
            lambda data: b"\xff" + data,
            "FAIL lot-L7.pdf.sig: not UTF-8 (byte 0xff at offset 0): damaged, or not a signature "
            "file",
        ),
        (
            lambda data: data.replace(
                b'"meaning": "reviewed",', b'"meaning": "reviewed", "meaning": "approved",', 1
            ),
            "FAIL lot-L7.pdf.sig: the key 'meaning' is given twice: refused, as two readers may "
            "take either",
        ),
        (
            lambda data: data[: len(data) // 2],
            "FAIL lot-L7.pdf.sig: neither a pvlog-signature/2 document nor pvlog-signature/1 "
            "records (edited?)",
        ),
        (
            lambda data: b'{"format": "pvlog-signature/2", "signatures": []}',
            "FAIL lot-L7.pdf.sig: holds no signature",
        ),
    ],
    ids=["not-utf8", "duplicate-key", "cut", "empty"],
)
def test_a_damaged_signature_file_is_one_line(
    signed: Signed, capsys: pytest.CaptureFixture[str], damage: Any, line: str
) -> None:
    signed.sig.write_bytes(damage(signed.sig.read_bytes()))
    rc, out = verify(signed, capsys)
    assert (rc, out) == (1, [line])
    assert sign(signed.report, "approved", "Jane Roe", signed.keys["jane"]) == 1
    assert capsys.readouterr().err == f"pvlog sign: {line.removeprefix('FAIL ')}: not signing " \
        "onto it\n"  # fmt: skip


def test_an_unsigned_record_fails(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    doc = signed.doc()
    for unsigned in ({}, {"signature": "Max Mustermann"}):
        doc["signatures"][2].pop("signature", None)
        doc["signatures"][2] |= unsigned
        signed.save(doc)
        for trusted in (True, False):
            rc, out = verify(signed, capsys, trusted=trusted)
            assert rc == 1 and fails(out)[0] == "FAIL signature 3: not signed (it has no " \
                "signature block)"  # fmt: skip
    doc["signatures"][2] = "approved by Max Mustermann"
    signed.save(doc)
    rc, out = verify(signed, capsys)
    assert rc == 1
    assert fails(out)[0] == "FAIL signature 3: not a pvlog-signature/2 record (edited?)"


def test_a_record_re_signed_by_another_key_fails(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = signed.doc()
    forged = {k: v for k, v in doc["signatures"][2].items() if k != "signature"}
    forged["signer"] = "Mallory"
    forged["signature"] = keys.sign(keys.load_private(signed.keys["mallory"], PHRASE), forged)
    doc["signatures"][2] = forged
    signed.save(doc)
    rc, out = verify(signed, capsys)
    assert rc == 1
    assert fails(out)[0] == (f"FAIL signature 3: signed by {signed.fingerprint('mallory')[:23]}"
                             "..., which is not a trusted key")  # fmt: skip
    rc, out = verify(signed, capsys, trusted=False)
    assert rc == 1, "every signature holds, each by its own key: the trail still sees it"
    assert out[2].startswith("UNTRUSTED approved by Mallory at ")
    assert fails(out)[-1].startswith("FAIL the audit trail records signature 3 (approved by Max")


def test_sign_without_a_trail_is_refused_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(signing.PASSPHRASE_ENV, PHRASE)
    keys.keygen(tmp_path / "jane.key", PHRASE)
    report = pdf_report(tmp_path / "lot-L7.pdf")
    before = sorted(tmp_path.iterdir())
    assert sign(report, "approved", "Jane Roe", tmp_path / "jane.key") == 1
    assert capsys.readouterr().err == (
        "pvlog sign: no audit trail to record the signature in: give -c CONFIG or --trail "
        "PATH\n")  # fmt: skip
    assert sorted(tmp_path.iterdir()) == before


def test_the_signed_copy_missing_stale_or_edited_fails(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    current = signed.copy.read_bytes()
    signed.copy.unlink()
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.signed.pdf: missing: the signed copy a reviewer reads (pvlog sign writes it)"
    ]
    signed.copy.write_bytes(signed.older_copy)
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.signed.pdf: shows 2 of the 3 signatures in lot-L7.pdf.sig: an older copy "
        "(each pvlog sign rewrites it)"]  # fmt: skip
    shown = [signing._shown(s) for s in signed.doc()["signatures"]]
    shown[0] = signature_page.Shown(**(vars(shown[0]) | {"signer": "Jane Doe"}))
    signed.copy.write_bytes(signature_page.signed_copy(signed.report, shown))
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.signed.pdf: its signature page does not show the signatures in "
        "lot-L7.pdf.sig (edited): 'Printed name: Jane Doe' where lot-L7.pdf.sig has "
        "'Printed name: Jane Roe'"]  # fmt: skip
    other = pdf_report(signed.report.parent / "other.pdf", title="Lot L7, other results")
    shown = [signing._shown(s) for s in signed.doc()["signatures"]]
    signed.copy.write_bytes(signature_page.signed_copy(other, shown))  # another report's pages
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.signed.pdf: page 1 is not the report's page 1 (edited: /Contents "
        "differs)"]  # fmt: skip
    # The same pages, other bytes (what two readers may read two ways, a key given twice
    # in an update appended, starts so): the copy is pvlog's byte for byte, or it fails.
    signed.copy.write_bytes(current + b"%% a comment: the same pages, other bytes\n")
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.signed.pdf: not byte for byte the copy pvlog makes from the report and "
        "lot-L7.pdf.sig (edited)"]  # fmt: skip
    signed.copy.write_bytes(b"%PDF-1.4 nothing")
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out)[0].startswith(
        "FAIL lot-L7.signed.pdf: not a PDF that can be read (")  # fmt: skip
    signed.copy.write_bytes(current)
    assert verify(signed, capsys)[0] == 0


def test_a_header_that_names_another_report_fails(
    signed: Signed, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = signed.doc()
    signed.save(doc | {"report_sha256": "0" * 64})
    rc, out = verify(signed, capsys)
    assert rc == 1 and fails(out) == [
        "FAIL lot-L7.pdf.sig: its header does not name the report its signatures sign (edited)"
    ]


PAGE_1 = r"page 1 is not the report's page 1 \(edited: "
SHOWN = {  # each edit, and the line verify says: a regular expression, after the copy's name
    "untouched": None,
    "annotation": PAGE_1 + r"/Annots added\)",
    "painted-over": r"page 3, a signature page, is not the one pvlog makes from lot-L7.pdf.sig "
    r"\(edited: /Contents differs\)",
    "parent": PAGE_1 + r"/Parent/CropBox added\)",
    "jbig2-page-1": PAGE_1 + r"/Contents/Filter differs\)",
    "jbig2-signatures": r"not a PDF that can be read \(.+\)",  # decoded: a decoder pypdf lacks
}


def _edit(w: PdfWriter, how: str) -> None:
    """The signed copy edited with pypdf, as the adversary did, to show something else."""
    first, last = w.pages[0], w.pages[-1]
    if how == "annotation":
        w.add_annotation(0, FreeText(text="verdict: PASS (lower bound 6.9 atm)",
                                     rect=(56, 700, 400, 740)))  # fmt: skip
    elif how == "painted-over":  # white, its text still there to extract
        content, drawn = ContentStream(None, w), last.get_contents()
        assert drawn is not None
        content.set_data(drawn.get_data() + b"\nq 1 1 1 rg 0 0 595 842 re f Q")
        last.replace_contents(content)
    elif how == "parent":  # to a page tree node of its own, lending page 1 a crop box
        node = {"/Type": NameObject("/Pages"), "/Count": NumberObject(1),
                "/Kids": ArrayObject([first.indirect_reference]),
                "/CropBox": ArrayObject(map(NumberObject, (0, 0, 595, 300)))}  # fmt: skip
        node_ref = w._add_object(DictionaryObject({NameObject(k): v for k, v in node.items()}))
        first[NameObject("/Parent")] = node_ref
    elif how.startswith("jbig2"):
        page: Any = first if how == "jbig2-page-1" else last
        page["/Contents"][NameObject("/Filter")] = NameObject("/JBIG2Decode")


@pytest.mark.parametrize(("how", "line"), SHOWN.items(), ids=list(SHOWN))
def test_a_copy_edited_to_show_something_else_fails_without_the_trail(
    signed: Signed, capsys: pytest.CaptureFixture[str], how: str, line: str | None
) -> None:
    signed.trail.unlink()  # no SHA-256 of the copy: what it shows is all there is to check
    writer = PdfWriter(signed.copy, incremental=True)  # the rest kept as it was, byte for byte
    _edit(writer, how)
    writer.write(signed.copy)
    rc, out = verify(signed, capsys)
    assert (rc, len(fails(out))) == ((0, 0) if line is None else (1, 1))
    assert line is None or re.fullmatch(f"FAIL lot-L7.signed.pdf: {line}", fails(out)[0])
