"""The signed copy of a PDF report (``lot-L7.pdf`` → ``lot-L7.signed.pdf``): the
report's pages, then a page of its signatures, each with the printed name, the
meaning, the UTC date and time, the key's fingerprint and the report's SHA-256, in
full: the signature shown with the record, in the form a person reads (21 CFR
11.50(b)); and the check of a copy against the signatures it must show.

Written with pypdf alone, on whatever made the report: the text set in the PDF's
standard fonts (Helvetica, Courier: nothing embedded), so a reader can copy it and a
check can extract it. Those fonts hold Windows-1252's letters only: a name outside
them is refused at signing (``printable``), not printed wrong.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import ContentStream, DictionaryObject, NameObject

from drivers.errors import PvlogError

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on a damaged file: ours say it

A4 = (595, 842)
"""Points; the signature page is A4 whatever the report's pages are."""
PER_PAGE = 7
"""Signatures on one signature page; more go on to another."""
ENCODING = "cp1252"
"""The standard fonts' WinAnsiEncoding."""
_FONTS = {"F1": "Helvetica", "F2": "Helvetica-Bold", "F3": "Courier"}
_NUMBERED = re.compile(r"^Signature \d+: ")

Line = tuple[str, float, str]
"""A line of the page: its font, its size (points) and its text."""


class PdfProblem(PvlogError):
    """A PDF that cannot be read, or its signed copy not made; one line naming it."""


@dataclass(frozen=True)
class Shown:
    """One signature as the page shows it."""

    n: int
    signer: str
    meaning: str
    signed_at: str
    """UTC, ``2026-12-06T08:31:02Z``."""
    key: str
    """The key's fingerprint, ``ed25519:`` and 64 hex digits."""
    report_sha256: str


def is_pdf(report: Path) -> bool:
    return report.suffix.lower() == ".pdf"


def copy_of(report: Path) -> Path:
    return report.with_name(f"{report.stem}.signed{report.suffix}")


def printable(name: str) -> bool:
    """Whether the page's fonts hold every letter of ``name``."""
    try:
        name.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


def pages(report_name: str, report_pages: int, shown: Sequence[Shown]) -> list[list[Line]]:
    """The signature pages' lines, ``PER_PAGE`` signatures to a page."""
    out = []
    for first in range(0, len(shown), PER_PAGE):
        more = f" (from signature {first + 1})" if first else ""
        lines: list[Line] = [
            ("F2", 16, f"Signatures{more}"),
            ("F1", 10, f"of {report_name}, the {report_pages} page(s) before this one. Each is "
                       "an Ed25519 signature over the"),
            ("F1", 10, f"report's SHA-256 by the key named, which pvlog verify {report_name} "
                       "checks."),
        ]  # fmt: skip
        for s in shown[first : first + PER_PAGE]:
            date, _, clock = s.signed_at.rstrip("Z").partition("T")
            lines += [
                ("F1", 10, ""),
                ("F2", 12, f"Signature {s.n}: {s.meaning}"),
                ("F1", 10, f"Printed name: {s.signer}"),
                ("F1", 10, f"Meaning: {s.meaning}"),
                ("F1", 10, f"Date and time: {date} {clock} UTC"),
                ("F3", 9, f"Key: {s.key}"),
                ("F3", 9, f"Report SHA-256: {s.report_sha256}"),
            ]
        out.append(lines)
    return out


def _escaped(text: str) -> bytes:
    raw = text.encode(ENCODING)
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _add_page(writer: PdfWriter, lines: list[Line]) -> None:
    page = writer.add_blank_page(*A4)
    fonts = DictionaryObject()
    for name, base in _FONTS.items():
        fonts[NameObject(f"/{name}")] = DictionaryObject({
            NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject(f"/{base}"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        })  # fmt: skip
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    ops = [b"BT", b"56 %d Td" % (A4[1] - 72)]
    for font, size, text in lines:
        ops += [b"/%s %g Tf" % (font.encode(), size), b"(" + _escaped(text) + b") Tj",
                b"0 %g Td" % -(size * 1.45)]  # fmt: skip
    ops.append(b"ET")
    content = ContentStream(None, writer)
    content.set_data(b"\n".join(ops))
    page.replace_contents(content)


def _read(path: Path) -> PdfReader:
    try:
        reader = PdfReader(path)
        len(reader.pages)  # the page tree read now: a damaged one raises here
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PdfProblem(f"{path.name}: not a PDF that can be read ({exc})") from None
    return reader


def signed_copy(report: Path, shown: Sequence[Shown]) -> bytes:
    """The report's pages and its signature page(s) showing ``shown``, as a PDF file.
    Raises ``PdfProblem`` for a report that is not a PDF pypdf reads."""
    reader = _read(report)
    writer = PdfWriter()
    try:
        writer.append(reader)
        for lines in pages(report.name, len(reader.pages), shown):
            _add_page(writer, lines)
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PdfProblem(f"{report.name}: its pages cannot be copied ({exc})") from None
    return out.getvalue()


def _content(pdf: PdfReader, page: int) -> bytes | None:
    """What a page draws (its content stream, decoded)."""
    content = pdf.pages[page].get_contents()
    return None if content is None else content.get_data()


def _said(lines: Sequence[Line]) -> list[str]:
    return [" ".join(t.split()) for _, _, t in lines if t.strip()]


def check(report: Path, copy: Path, shown: Sequence[Shown], sig_name: str) -> str | None:
    """What is wrong with ``copy`` as the signed copy of ``report`` showing ``shown``,
    the signatures in ``sig_name`` (None: it is)."""
    if not copy.is_file():
        return f"{copy.name}: missing: the signed copy a reviewer reads (pvlog sign writes it)"
    original, signed = _read(report), _read(copy)
    have, own = len(signed.pages), len(original.pages)
    if have <= own:
        return f"{copy.name}: {have} page(s), not the report's {own} and a signature page (edited)"
    try:
        for i in range(own):
            if _content(signed, i) != _content(original, i):
                return f"{copy.name}: page {i + 1} is not the report's page {i + 1} (edited)"
        text = "\n".join(signed.pages[i].extract_text() for i in range(own, have))
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PdfProblem(f"{copy.name}: not a PDF that can be read ({exc})") from None
    got = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    due = pages(report.name, own, shown)
    if got == [t for page in due for t in _said(page)]:
        if have != own + len(due):
            return f"{copy.name}: {have} pages, not the report's {own} and {len(due)} of " \
                "signatures (a page added?)"  # fmt: skip
        return None
    count = sum(1 for line in got if _NUMBERED.match(line))
    for m in range(len(shown) - 1, 0, -1):
        if got == [t for page in pages(report.name, own, shown[:m]) for t in _said(page)]:
            return f"{copy.name}: shows {m} of the {len(shown)} signatures in {sig_name}: " \
                "an older copy (each pvlog sign rewrites it)"  # fmt: skip
    if count > len(shown):
        return f"{copy.name}: shows {count} signatures, {sig_name} holds {len(shown)}: one " \
            f"removed from {sig_name}, or the copy edited"  # fmt: skip
    wanted = [t for page in due for t in _said(page)]
    at = next((i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
              min(len(got), len(wanted)))  # fmt: skip
    where = f"{got[at]!r} where {sig_name} has {wanted[at]!r}" if at < min(len(got), len(wanted)) \
        else "lines added or taken away"  # fmt: skip
    return f"{copy.name}: its signature page does not show the signatures in {sig_name} " \
        f"(edited): {where}"  # fmt: skip
