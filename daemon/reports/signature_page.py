"""The signed copy of a PDF report (``lot-L7.pdf`` → ``lot-L7.signed.pdf``): the
report's pages, then a page of its signatures, each with the printed name, the
meaning, the UTC date and time, the key's fingerprint and the report's SHA-256, in
full: the signature shown with the record, in the form a person reads (21 CFR
11.50(b)); and the check of a copy against the signatures it must show.

Written with pypdf alone, on whatever made the report: the text set in the PDF's
standard fonts (Helvetica, Courier: nothing embedded), so a reader can copy it and a
check can extract it. Those fonts hold Windows-1252's letters only: a name outside
them is refused at signing (``printable``), not printed wrong.

The check holds the copy to the one pvlog makes again, from the report and the
signatures, entry by entry (``_differs``), not to its text alone: an annotation, a box
painted over a page or a crop box lent by a ``/Parent`` changes what a reviewer sees
and not the text. It trusts pypdf to write a report's pages as it did at signing: a
pypdf that copies them otherwise fails every copy made before it (``sign`` anew).
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.errors import DependencyError, PyPdfError
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DictionaryObject,
    IndirectObject,
    NameObject,
    StreamObject,
)

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

UNREADABLE: tuple[type[Exception], ...] = (
    PyPdfError, DependencyError, ArithmeticError, AssertionError, AttributeError, LookupError,
    RecursionError, TypeError, ValueError, struct.error, zlib.error,
)  # fmt: skip
"""What reading a damaged or hostile PDF raises: pypdf's own errors, a decoder it
lacks (``DependencyError``, not one of them: JBIG2, Brotli), and the plain ones its
parsers let through on a malformed file. Each becomes one line naming the file."""

_UNREADABLE_FILE: tuple[type[Exception], ...] = (OSError, *UNREADABLE)

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
    except _UNREADABLE_FILE as exc:
        raise PdfProblem(f"{path.name}: not a PDF that can be read ({_one_line(exc)})") from None
    return reader


def _one_line(exc: BaseException) -> str:
    """What went wrong, on the one line the problem is said in."""
    return " ".join(str(exc).split()) or type(exc).__name__


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
    except UNREADABLE as exc:
        raise PdfProblem(f"{report.name}: its pages cannot be copied ({_one_line(exc)})") from None
    return out.getvalue()


def _said(lines: Sequence[Line]) -> list[str]:
    return [" ".join(t.split()) for _, _, t in lines if t.strip()]


def check(report: Path, copy: Path, shown: Sequence[Shown], sig_name: str) -> str | None:
    """What is wrong with ``copy`` as the signed copy of ``report`` showing ``shown``,
    the signatures in ``sig_name`` (None: it is). Raises ``PdfProblem`` for a copy (or
    report) that cannot be read, whatever the reader raised: one line, never a trace."""
    if not copy.is_file():
        return f"{copy.name}: missing: the signed copy a reviewer reads (pvlog sign writes it)"
    try:
        return _checked(report, copy, shown, sig_name)
    except UNREADABLE as exc:
        raise PdfProblem(f"{copy.name}: not a PDF that can be read ({_one_line(exc)})") from None


def _checked(report: Path, copy: Path, shown: Sequence[Shown], sig_name: str) -> str | None:
    """``check``'s findings, in the order a reviewer needs them: the pages counted, the
    report's pages, the signatures the text names (an older copy, one removed), then
    the signature pages and the document whole, against the copy pvlog makes now from
    the report and ``sig_name``: the text alone misses what covers it, lies over it or
    is drawn beside it (an annotation, a box painted over the page, a crop)."""
    original, signed = _read(report), _read(copy)
    have, own = len(signed.pages), len(original.pages)
    if have <= own:
        return f"{copy.name}: {have} page(s), not the report's {own} and a signature page " \
            "(edited)"  # fmt: skip
    odd = next((s for s in shown if not printable("".join(map(str, vars(s).values())))), None)
    if odd is not None:  # pvlog sign refuses it: the page to compare with cannot be made
        return f"{copy.name}: signature {odd.n} in {sig_name} has a letter no signature page " \
            "shows (they hold Windows-1252 only): not one pvlog sign made"  # fmt: skip
    made = signed_copy(report, shown)
    pvlog = PdfReader(io.BytesIO(made))
    for i in range(own):
        where = _differs(signed, pvlog, signed.pages[i], pvlog.pages[i])
        if where:
            return f"{copy.name}: page {i + 1} is not the report's page {i + 1} (edited: {where})"
    text = "\n".join(signed.pages[i].extract_text() for i in range(own, have))
    bad = _text_checked(text, report.name, own, shown, copy=copy.name, sig_name=sig_name)
    if bad:
        return bad
    if have != len(pvlog.pages):
        return f"{copy.name}: {have} pages, not the report's {own} and {len(pvlog.pages) - own} " \
            "of signatures (a page added?)"  # fmt: skip
    for i in range(own, have):
        where = _differs(signed, pvlog, signed.pages[i], pvlog.pages[i])
        if where:
            return f"{copy.name}: page {i + 1}, a signature page, is not the one pvlog makes " \
                f"from {sig_name} (edited: {where})"  # fmt: skip
    where = _differs(signed, pvlog, _document(signed), _document(pvlog))
    if where:
        return f"{copy.name}: its document catalog or information is not what pvlog writes " \
            f"(edited: {where})"  # fmt: skip
    if copy.read_bytes() != made:  # what two readers may read two ways (a key given twice)
        return f"{copy.name}: not byte for byte the copy pvlog makes from the report and " \
            f"{sig_name} (edited)"  # fmt: skip
    return None


def _text_checked(
    text: str, name: str, own: int, shown: Sequence[Shown], *, copy: str, sig_name: str
) -> str | None:
    """What the signature pages' ``text`` says is wrong: it is not the lines showing
    ``shown``, the signatures of ``sig_name``; said as what most likely happened (an
    older copy, one removed, a line edited)."""

    def said(m: int) -> list[str]:
        return [t for page in pages(name, own, shown[:m]) for t in _said(page)]

    got = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    n = len(shown)
    wanted = said(n)
    if got == wanted:
        return None
    for m in range(n - 1, 0, -1):
        if got == said(m):
            return f"{copy}: shows {m} of the {n} signatures in {sig_name}: an older copy " \
                "(each pvlog sign rewrites it)"  # fmt: skip
    count = sum(1 for line in got if _NUMBERED.match(line))
    if count > n:
        return f"{copy}: shows {count} signatures, {sig_name} holds {n}: one removed from " \
            f"{sig_name}, or the copy edited"  # fmt: skip
    at = next((i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b),
              min(len(got), len(wanted)))  # fmt: skip
    where = f"{got[at]!r} where {sig_name} has {wanted[at]!r}" if at < min(len(got), len(wanted)) \
        else "lines added or taken away"  # fmt: skip
    return f"{copy}: its signature page does not show the signatures in {sig_name} " \
        f"(edited): {where}"  # fmt: skip


def _document(reader: PdfReader) -> DictionaryObject:
    """What a reader is shown beside the pages: the catalog (actions, forms, layers,
    outlines, the page tree) and the document information (its title)."""
    trailer = reader.trailer
    return DictionaryObject({NameObject(k): trailer.raw_get(k) for k in ("/Root", "/Info")
                             if k in trailer})  # fmt: skip


def _differs(copy: PdfReader, made: PdfReader, a: Any, b: Any) -> str | None:
    """Where ``a``, an object of ``copy``, first differs from ``b``, the same object of
    the copy pvlog makes now (None: nowhere), as the path of entries to it.

    Every entry is compared, followed through references, so that one added where a
    reader looks (an annotation, an action, a ``/Parent`` lending a page a crop box) is
    seen whatever the bytes around it; not the bytes themselves, as the same pages
    written otherwise show the same (the audit trail's SHA-256 sees those). A page is
    referred to by its number. A stream is the same when its entries are (but
    ``/Length``) and its data, as stored or else decoded: an image only pypdf's
    optional decoders read is decoded only when it differs. A pair of objects met
    again is taken as the same (it is, unless a difference is found elsewhere), so
    cycles end."""
    numbers = [{_ref(p.indirect_reference): n for n, p in enumerate(r.pages)} for r in (copy, made)]
    seen: set[tuple[object, object]] = set()
    todo: list[tuple[Any, Any, str]] = [(a, b, "")]
    while todo:
        x, y, at = todo.pop()
        if isinstance(x, IndirectObject) or isinstance(y, IndirectObject):
            refs = (_ref(x), _ref(y))
            page = (numbers[0].get(refs[0]), numbers[1].get(refs[1]))
            if page != (None, None):
                if page[0] != page[1]:
                    return f"{at} differs"
                continue
            if refs in seen:
                continue
            seen.add(refs)
            x, y = x.get_object(), y.get_object()
        where = _unlike(x, y, at, todo)
        if where:
            return where
    return None


def _unlike(x: Any, y: Any, at: str, todo: list[tuple[Any, Any, str]]) -> str | None:
    """How ``x`` and ``y`` (objects, not references) differ at the path ``at``; their
    entries put on ``todo``, first ones last, to be compared in turn."""
    if isinstance(x, DictionaryObject) and isinstance(y, DictionaryObject):
        stream = isinstance(x, StreamObject)
        if stream != isinstance(y, StreamObject):
            return f"{at} differs"
        ours, theirs = ({k for k in d if not (stream and k == "/Length")} for d in (x, y))
        if ours != theirs:
            extra = sorted(ours - theirs)
            return f"{at}{extra[0]} added" if extra else f"{at}{min(theirs - ours)} taken away"
        todo += [(x.raw_get(k), y.raw_get(k), f"{at}{k}") for k in sorted(ours, reverse=True)]
        if (isinstance(x, StreamObject) and isinstance(y, StreamObject) and x._data != y._data
                and x.get_data() != y.get_data()):  # fmt: skip
            return f"{at} differs"
    elif isinstance(x, ArrayObject) and isinstance(y, ArrayObject):
        if len(x) != len(y):
            return f"{at} differs"
        todo += [(x[i], y[i], f"{at}[{i}]") for i in reversed(range(len(x)))]
    elif type(x) is not type(y) or x != y:
        return f"{at} differs"
    return None


def _ref(obj: Any) -> object:
    """An indirect object's number and generation; a direct one is itself."""
    if isinstance(obj, IndirectObject):
        return (obj.idnum, obj.generation)
    return id(obj)
