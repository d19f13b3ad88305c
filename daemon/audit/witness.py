"""The witnesses of an audit trail's end, and their comparison with the trail.

A hash chain shows an entry edited or taken out of the middle; it cannot show the
trail's end cut off, its last entry edited, or everything after some entry rewritten
with the chain recomputed. Something outside the chain must have seen the head:

- **the head file** (``audit.jsonl.head``), rewritten under the trail's lock by every
  append: ``latest`` names the last entry (whoever wrote it), ``signed`` the last one
  the daemon wrote, signed with its key;
- **``trail_head`` entries**: the daemon's signed statement of the entry before it, at
  every stop and every ``audit.head_every_s`` while the trail grows;
- **manifests**, each naming (and signing) the head when it was written;
- **InfluxDB**, where each entry the daemon writes goes as a ``pv_audit`` point with
  its seq and hash.

Each says "entry N had this hash". The trail ending before N means entries were cut
from its end; entry N differing means it, or the trail from there, was rewritten.
What stays undetectable, said in docs/records.md: someone who cuts the end and every
witness of it (and, for a signed one, holds the key).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemon.audit import keys

FORMAT = "pvlog-audit-head/1"


def head_file(trail: Path) -> Path:
    return trail.with_name(trail.name + ".head")


def written(
    trail: Path, seq: int, sha256: str, time_ns: int, who: str, *, key: Ed25519PrivateKey | None
) -> None:
    """After an append (under the trail's lock): the head file names the new head. A
    head file that cannot be written leaves the last one (a weaker witness, not a
    wrong one: the entry it names is still there)."""
    path = head_file(trail)
    latest = {"seq": seq, "sha256": sha256, "time_ns": time_ns, "who": who}
    doc: dict[str, Any] = {"format": FORMAT, "trail": str(trail.resolve()), "latest": latest}
    if key is not None:
        signed = {"seq": seq, "sha256": sha256, "time_ns": time_ns}
        doc["signed"] = {**signed, "signature": keys.sign(key, signed)}
    else:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            kept = keys.strict_loads(path.read_bytes()).get("signed")
            if kept is not None:
                doc["signed"] = kept
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):
        with tmp.open("w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)


@dataclass(frozen=True, slots=True)
class Witness:
    where: str
    """Who saw the head, as a reader names it (``the head file``, ``manifest X``...)."""
    seq: int
    sha256: str


def compare(witness: Witness, hashes: dict[int, str], last: int) -> str | None:
    """What ``witness`` shows about the trail whose entries have ``hashes`` and end at
    ``last`` (None: it saw this trail)."""
    w = witness
    if w.seq > last:
        cut = f"entry {last + 1}" if w.seq == last + 1 else f"entries {last + 1}-{w.seq}"
        return (f"{w.where} names entry {w.seq}; the trail ends at entry {last}: {cut} cut "
                "from its end")  # fmt: skip
    have = hashes.get(w.seq)
    if have == w.sha256:
        return None
    if w.seq == last:
        return (f"{w.where} names entry {w.seq}, the last, as {w.sha256[:12]}...; the trail "
                f"has {str(have)[:12]}...: the last entry edited")  # fmt: skip
    return (f"{w.where} names entry {w.seq} as {w.sha256[:12]}...; the trail has "
            f"{str(have)[:12]}...: rewritten from there (its chain recomputed)")  # fmt: skip


def in_file(trail: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The head file's document, or why it cannot be read (both None: there is none)."""
    path = head_file(trail)
    try:
        doc = keys.strict_loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path.name}: unreadable ({exc})"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None, f"{path.name}: not a {FORMAT} document"
    return doc, None


def beyond(trail: Path, seq: int, sha256: str, *, signing: bool) -> dict[str, Any] | None:
    """What the head file says when the trail, ending at ``seq`` with ``sha256``, is not
    the trail it witnessed: it names an entry the trail no longer has as it was; or it
    is gone or unreadable (or, for the daemon's append, ``signing``, its signed part
    is) though the trail has entries. None: it names this end or one before. The
    content of a ``trail_cut`` entry, so the next append never covers a cut."""
    ended = {"seq": seq, "sha256": sha256}
    doc, unreadable = in_file(trail)
    if doc is None:
        why = "unreadable" if unreadable is not None else "missing"
        return {"head_file": None, "why": why, "trail_ended_at": ended} if seq else None
    parts = {k: doc.get(k) for k in ("latest", "signed")}
    for got in parts.values():
        named = named_by(got)
        if named is not None and (named[0] > seq or (named[0] == seq and named[1] != sha256)):
            return {"head_file": parts, "why": "beyond", "trail_ended_at": ended}
    if signing and seq and named_by(parts["signed"]) is None:
        return {"head_file": parts, "why": "no signed head", "trail_ended_at": ended}
    return None


def named_by(part: Any) -> tuple[int, str] | None:
    """The (seq, hash) a part of the head file names; None: it names none."""
    if not isinstance(part, dict):
        return None
    seq, digest = part.get("seq"), part.get("sha256")
    if type(seq) is not int or not isinstance(digest, str):
        return None
    return seq, digest


def heads(entries: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], Witness]], list[str]]:
    """The daemon's ``trail_head`` entries: each one's ``what`` (its signature in it)
    and what it witnesses; and one line for each that does not say it (edited)."""
    out, bad = [], []
    for e in entries:
        if e.get("kind") != "trail_head":
            continue
        what: Any = e.get("what")
        named = named_by(what)
        if named is None:
            bad.append(f"trail_head entry {e.get('seq')}: names no entry (edited)")
        else:
            out.append((what, Witness(f"trail_head entry {e['seq']}", *named)))
    return out, bad
