"""``pvlog audit verify``'s whole check: the chain, every witness of its end, and the
files it names.

The chain (``daemon.audit.trail.verify``) shows what was changed inside; the witnesses
(``daemon.audit.witness``: the head file, the daemon's ``trail_head`` entries, the
manifests, InfluxDB's ``pv_audit``) show the end cut off, the last entry edited, and a
rewrite after the last anchor; ``daemon.audit.crosscheck`` shows the files the trail
names deleted, renamed or swapped. Each signature is tallied against the trusted keys
(``daemon.audit.trust``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.audit import crosscheck, keys, witness
from daemon.audit.trail import CUT, HEAD, entries, verify
from daemon.audit.trust import Tally
from daemon.audit.witness import Witness
from daemon.recordings.manifest import SUFFIX


@dataclass
class TrailReport:
    tally: Tally
    entries: int = 0
    torn: bool = False
    notes: list[str] = field(default_factory=list)
    witnessed_to: int = 0
    """The last entry some witness saw."""
    witnesses: dict[str, int] = field(default_factory=dict)
    """Kind of witness -> how many saw this trail as it is."""


def check(
    path: Path,
    tally: Tally,
    recordings: Path | None = None,
    influx: Iterable[tuple[int, str]] | None = None,
) -> TrailReport:
    """Check the trail at ``path``; ``recordings``: where the files it names are (the
    manifests are looked for there too); ``influx``: InfluxDB's ``pv_audit`` points of
    this trail as (seq, sha256), when it was reached."""
    verdict = verify(path)
    report = TrailReport(tally, verdict.entries, verdict.torn, list(verdict.notes))
    if not verdict.ok:
        tally.problems.append(f"{path.name}: {verdict.problem}")
        report.notes.append(
            "the witnesses and the files were not checked: the chain is "
            "broken, so what entries after the break say is not evidence"
        )
        return report
    whole = entries(path)
    hashes = {int(e["seq"]): str(e["sha256"]) for e in whole}
    last = verdict.entries
    seen: list[tuple[str, Witness]] = []

    for n, e in enumerate(whole):
        if e["kind"] == CUT:
            said = _cut(e, whole[:n])
            (tally.problems if said[1] else report.notes).append(said[0])
    headed, malformed = witness.heads(whole)
    tally.problems += malformed
    doc, unreadable = witness.in_file(path)
    if unreadable is not None:
        tally.problems.append(unreadable)
    elif doc is None:
        if any(e.get("kind") == HEAD for e in whole):
            tally.problems.append(f"{witness.head_file(path).name}: missing, though the daemon "
                                  "wrote it with its trail_head entries: deleted")  # fmt: skip
    else:
        name = witness.head_file(path).name
        if not isinstance(doc.get("signed"), dict) and any("signature" in w for w, _ in headed):
            tally.problems.append(f"{name}: has no signed head, though the daemon signed its "
                                  "trail_head entries: its signed part removed")  # fmt: skip
        for part in ("signed", "latest"):
            got = doc.get(part)
            if not isinstance(got, dict):
                continue
            if part == "signed" and not tally.signature(got, f"{name} (its signed head)"):
                continue
            named = witness.named_by(got)
            if named is None:
                tally.problems.append(f"{name}: its {part} head is malformed")
            else:
                seen.append(("the head file", Witness(f"{name} ({part})", *named)))

    for what, w in headed:
        if tally.signature(what, w.where):
            seen.append(("trail_head entries", w))

    base = recordings if recordings is not None else path.parent
    for mpath in sorted(base.rglob(f"*{SUFFIX}")):
        try:
            mdoc = keys.strict_loads(mpath.read_bytes())
        except (OSError, ValueError):
            continue  # unreadable: `recording verify` says so
        named = witness.named_by(mdoc.get("audit")) if isinstance(mdoc, dict) else None
        if named is None:
            continue  # names no entry: `recording verify` says so
        w = Witness(str(mpath.relative_to(base)), *named)
        if tally.signature(mdoc, w.where):
            seen.append(("manifests", w))

    points = sorted(influx or [])
    if points:
        newest = points[-1]
        seen.append(("InfluxDB", Witness(f"InfluxDB's pv_audit (seq {newest[0]})", *newest)))
        wrong = [p for p in points if hashes.get(p[0], p[1]) != p[1]]
        if wrong:
            seen.append(("InfluxDB", Witness("InfluxDB's pv_audit", *wrong[0])))

    for kind, w in seen:
        problem = witness.compare(w, hashes, last)
        if problem is not None:
            tally.problems.append(problem)
        else:
            report.witnesses[kind] = report.witnesses.get(kind, 0) + 1
            report.witnessed_to = max(report.witnessed_to, w.seq)
    tally.problems += crosscheck.check(whole, base)
    return report


def _cut(entry: dict[str, Any], before: list[dict[str, Any]]) -> tuple[str, bool]:
    """What a ``trail_cut`` entry says, and whether it is a failure: the head file ahead
    of the trail always is; one gone, or without its signed part, is when the daemon had
    already written (signed) heads, and else the first start of a trail kept before
    there were head files."""
    what = entry["what"]
    why = what.get("why", "beyond")
    ended = what.get("trail_ended_at")
    at = ended.get("seq") if isinstance(ended, dict) else "?"
    head = f"entry {entry['seq']} (trail_cut)"
    if why == "beyond":
        return (f"{head}: as it was written, the head file named an entry this trail no "
                f"longer had as it was (the trail ended at entry {at}): entries cut from its "
                "end, or its last edited, before then", True)  # fmt: skip
    signed = why == "no signed head"
    had = any(e["kind"] == HEAD and (not signed or "signature" in e["what"]) for e in before)
    said = f"{head}: as it was written, the head file was {why} (the trail ended at entry {at})"
    if had:
        return f"{said}, though the daemon had written it: deleted or rewritten", True
    return f"{said}: the first head file of a trail begun before there were any", False


def summary(report: TrailReport) -> str:
    said = ", ".join(f"{k} {n}" for k, n in sorted(report.witnesses.items())) or "none"
    end = report.witnessed_to
    tail = "" if end >= report.entries else \
        f"; entries {end + 1}-{report.entries} after the last witness"  # fmt: skip
    return (f"{report.tally.state}: {report.entries} entries chained, witnessed to entry "
            f"{end} ({said}){tail}; {report.tally.keys_said()}")  # fmt: skip
