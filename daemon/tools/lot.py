"""``pvlog report --lot LOT``: a lot's results across its specimens, from recordings or InfluxDB.

The specimens are the sessions tagged ``lot=LOT`` (``[session] tags``, ``pvlog session
start --tag lot=...``, the page's tags), each read as ``pvlog report`` reads one
(``daemon.tools.report``) and judged together (``daemon.reports.lot``).

Nothing counts unchecked. Every file the lot reads is hashed as read and held to the
manifest beside it: a file that differs, or that no manifest lists, refuses its
specimen in one line and the command exits 1 (``--allow-unverified`` goes on, and the
document says which files were counted so). A lot that cannot be judged as recorded
(a specimen tested again without ``retest``, a bad tag, sessions disagreeing on the
RBP) is refused in one line, exit 2. The ``report_made`` entry, with the verdicts and
where the RBP came from, is in the audit trail before anything is printed.

Needs scipy (the ``lot`` extra) for the tolerance factor and the normality test.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daemon.acquisition.inflations import BASELINE_ATM, THRESHOLD_ATM
from daemon.audit import crosscheck, keys, tool_entry, trust
from daemon.audit.trail import entries
from daemon.config import load_config
from daemon.influx.client import InfluxUnavailable
from daemon.influx.v1 import InfluxV1
from daemon.recordings.findings import Findings
from daemon.recordings.holdings import Listing, held_to, listings, manifests_under, unread
from daemon.recordings.manifest import sha256_file
from daemon.reports.analysis import Trace, analyse
from daemon.reports.despike import despiked
from daemon.reports.lot import lot_result
from daemon.reports.lot_plan import LotRefused, plan_of
from daemon.reports.lot_text import text
from daemon.reports.lot_types import FileCheck, Lot, as_json
from daemon.reports.specimens import Piece, specimens_of
from daemon.version import pvlog_version
from drivers.errors import PvlogError


def file_checks(files: Iterable[str], device: str, session: str,
                listed: dict[Path, Listing]) -> tuple[FileCheck, ...]:  # fmt: skip
    """Each file hashed now and held to the manifest that lists it."""
    out = []
    for name in files:
        path = Path(name)
        sha = sha256_file(path)
        listing = listed.get(path.resolve())
        out.append(FileCheck(
            str(path), sha, device, listing.manifest.name if listing else None,
            listing.sha256 if listing else None, held_to(path, sha, session, listing),
        ))  # fmt: skip
    return tuple(out)


def influx_sessions(client: InfluxV1, lot: str) -> list[str]:
    """The sessions whose start says ``lot``, in name order."""
    q = "SELECT state FROM pv_session WHERE lot = $lot AND state = 'start' GROUP BY session"
    result = client.query(q, {"lot": lot})["results"][0]
    if "error" in result:
        raise InfluxUnavailable(result["error"])
    return sorted({s["tags"]["session"] for s in result.get("series") or []})


def of_lot(traces: Iterable[Trace], lot: str) -> list[Trace]:
    return [t for t in traces if t.about.get("tag.lot") == lot]


def pieces_of(args: argparse.Namespace, lot: list[Trace],
              listed: dict[Path, Listing]) -> list[Piece]:  # fmt: skip
    """Each session run's inflation device, despiked and analysed, with the micrometer
    beside it; a run with no pressure at all is a piece too (its specimen was tested)."""
    # A micrometer is a device of its own in the specimen's session and run: its trace
    # has diameters and no pressure, and lends them to the inflation device's steps.
    beside: dict[tuple[str, str], list[Trace]] = {}
    for t in lot:
        if t.micrometer:
            beside.setdefault((t.session, t.run), []).append(t)
    devices = {(t.session, t.run) for t in lot if not t.micrometer}
    out = []
    for t in lot:
        if t.micrometer and (t.session, t.run) in devices:
            continue  # lent to the device beside it
        clean, spikes = despiked(t)
        report = analyse(clean, threshold_atm=args.threshold_atm, baseline_atm=args.baseline_atm)
        mics = [] if t.micrometer else beside.get((t.session, t.run), [])
        out.append(Piece(
            report, file_checks(t.files, t.device, t.session, listed),
            sorted(t.diameter_mm + [d for m in mics for d in m.diameter_mm]),
            tuple(c for m in mics for c in file_checks(m.files, m.device, m.session, listed)),
            spikes,
        ))  # fmt: skip
    return out


def build(args: argparse.Namespace, traces: list[Trace], findings: list[Findings],
          said: list[str]) -> Lot:  # fmt: skip
    """The lot's document; ``LotRefused`` (exit 2) or ``Unverified`` (exit 1) if it
    cannot be made as asked. ``said``: what a reader should know of its records' trust
    and of checks that could not be made, said once the document is made."""
    lot = of_lot(traces, args.lot)
    trusted = trust.trusted(args.key, args.config)  # KeyProblem, ConfigError
    listed, problems = (
        listings(manifests_under(args.recordings), trusted) if args.recordings else ({}, [])
    )
    if args.recordings:
        problems += in_trail(args, {t.session for t in lot}, said)
        if not trusted:
            signers = sorted({s for x in listed.values() if (s := x.signer) is not None})
            said += [trust.untrusted_line(fingerprint, "manifests") for fingerprint in signers]
            unsigned = len({x.manifest for x in listed.values() if x.signer is None})
            if unsigned:
                said.append(f"UNSIGNED: {unsigned} manifest(s) not signed: anyone who can "
                            "write the files could have made them")  # fmt: skip
    pieces = pieces_of(args, lot, listed)
    flags = {"rbp_atm": args.rated_burst_atm, "nominal_atm": args.nominal_atm,
             "fatigue_atm": args.fatigue_atm, "cycles": args.cycles_target}  # fmt: skip
    plan = plan_of(((p.trace.session, p.tags) for p in pieces), flags)
    specimens = specimens_of(pieces, plan, args.test)
    problems += [
        f"specimen {s.name} (session {p.trace.session}): {c.problem}"
        for s in specimens
        for p in s.pieces
        for c in (*p.files, *p.micrometer_files)
        if c.problem is not None
    ]
    read = {Path(f).resolve() for t in lot for f in t.files}
    problems += [f"a session of lot {args.lot}: {x}" for x in unread(listed, read, args.lot)]
    if problems and not args.allow_unverified:
        raise Unverified(problems)
    detector = {
        "threshold_atm": {"value": args.threshold_atm, "from": _given(args, "threshold_atm")},
        "baseline_atm": {"value": args.baseline_atm, "from": _given(args, "baseline_atm")},
    }
    return lot_result(
        args.lot, specimens, plan, pvlog_version=pvlog_version(),
        source="recordings" if args.recordings else "influxdb", unverified=problems,
        damaged=[f.as_json() for f in findings if f.damaged], detector=detector,
    )  # fmt: skip


def _lot_in_trail(args: argparse.Namespace) -> tuple[Path | None, Path, set[str]]:
    """The audit trail beside the lot's files (or ``-c``'s, None: neither), the
    directory its file names are under, and the lot's sessions it recorded."""
    trail = tool_entry.find_trail(args.config, args.recordings)
    base = trail.parent if trail is not None else Path(args.recordings[0])
    if args.config is not None:
        config = load_config(args.config, devices=False)
        base = config.recording.dir if config.recording_enabled else base
    if trail is None or not trail.is_file():
        return trail, base, set()
    sessions = {
        str(e["what"].get("session")) for e in entries(trail)
        if e["kind"] == "session_start" and isinstance(tags := e["what"].get("tags"), dict)
        and tags.get("lot") == args.lot
    }  # fmt: skip
    return trail, base, sessions


def in_trail(args: argparse.Namespace, read: set[str], said: list[str]) -> list[str]:
    """The lot's records held to the audit trail (``crosscheck.held_to_trail``): its
    chain whole, each manifest anchored to it, every file it names in the lot's
    sessions (or those read) there as named; a session's folder deleted with its
    manifest leaves no manifest to say so."""
    trail, base, sessions = _lot_in_trail(args)
    ours = sessions | read
    out: list[str] = []
    notes: list[str] = []
    for given in args.recordings:
        within = given if given.is_dir() else given.parent
        out += crosscheck.held_to_trail(trail, base, within, named=args.config is not None,
                                        sessions=ours.__contains__, notes=notes)  # fmt: skip
    said += [f"note: {note}" for note in dict.fromkeys(notes)]
    return [f"{p} (audit trail {trail})" for p in dict.fromkeys(out)]


def not_read(args: argparse.Namespace, read: set[str]) -> list[str]:
    """The lot's sessions the trail records that the report did not read (their files
    not given): said in the report's audit entry, so a lot judged on some of its
    sessions shows which were left out."""
    return sorted(_lot_in_trail(args)[2] - read)


def _given(args: argparse.Namespace, key: str) -> str:
    """Where a detector setting came from: its flag, or the default everyone uses."""
    default = {"threshold_atm": THRESHOLD_ATM, "baseline_atm": BASELINE_ATM}[key]
    return "default" if getattr(args, key) == default else "--" + key.replace("_", "-")


class Unverified(PvlogError):
    """Files that are not as their manifests say: each a line (exit 1)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0])
        self.problems = problems


def run_lot(args: argparse.Namespace, traces: list[Trace], findings: list[Findings],
            failed: bool) -> int:  # fmt: skip
    """``pvlog report --lot``: the audit entry first, then the document."""
    if not of_lot(traces, args.lot):
        print(f"pvlog report: no specimen of lot {args.lot!r}", file=sys.stderr)
        return 1
    try:
        said: list[str] = []
        lot = build(args, traces, findings, said)
    except (LotRefused, keys.KeyProblem) as exc:
        print(f"pvlog report: lot {args.lot}: {exc}", file=sys.stderr)
        return 2
    except Unverified as exc:
        for line in exc.problems:
            print(f"pvlog report: lot {args.lot}: {line}: refused (--allow-unverified to count "
                  "it, said on the document)", file=sys.stderr)  # fmt: skip
        return 1
    for line in said:
        print(f"pvlog report: lot {args.lot}: {line}", file=sys.stderr)
    doc = as_json(lot)
    if args.pdf is not None:
        from daemon.reports.lot_pdf import save_lot_pdf

        pages = save_lot_pdf(lot, args.pdf, title_block(of_lot(traces, args.lot)), args.units)
        print(f"lot report written to {args.pdf} ({pages} pages)", file=sys.stderr)
    _audit(args, lot)
    out = json.dumps(doc, indent=1) if args.format == "json" else text(lot, args.units)
    print(out)  # a reader gone (`| head`) ends it as SIGPIPE would: the entry is written
    return 1 if failed or (lot.damaged and not args.allow_damaged) else 0


def _audit(args: argparse.Namespace, lot: Lot) -> None:
    """The report in the trail: the lot, its verdicts, where the RBP came from, its files."""
    what: dict[str, Any] = {
        "session": args.session, "lot": args.lot,
        "results": [{"specimen": s.specimen, "sessions": [p.session for p in s.parts]}
                    for s in lot.specimens],
        "rated_burst_atm": lot.plan.get("rbp_atm", {}).get("value"),
        "rbp_from": lot.plan.get("rbp_atm", {}).get("from"),
        "plan": lot.plan,
        "verdict": lot.verdict,
        "verdicts": {
            "burst": lot.burst.verdict if lot.burst else None,
            "fatigue": lot.fatigue.verdict if lot.fatigue else None,
            "compliance": lot.compliance.verdict if lot.compliance else None,
        },
        "unverified": list(lot.unverified),
        "sessions_not_read": not_read(args, {p.session for s in lot.specimens for p in s.parts}),
    }  # fmt: skip
    what["files_read"] = {
        str(Path(c.file).resolve()): c.sha256
        for s in lot.specimens
        for c in (*(f for p in s.parts for f in p.files), *s.micrometer_files)
    }
    tool_entry.made("report_made", args.config, args.recordings, what, [args.pdf])


def title_block(traces: Iterable[Trace]) -> dict[str, Any]:
    """What the report's first page names: devices (model, serial), operator, build."""
    import time

    devices = sorted({
        " ".join(x for x in (t.device, t.about.get("model", ""), t.about.get("serial", "")) if x)
        for t in traces
    })  # fmt: skip
    operators = sorted({t.about["tag.operator"] for t in traces if t.about.get("tag.operator")})
    return {
        "made_ns": time.time_ns(),
        "version": f"pvlog {pvlog_version()}",
        "operator": ", ".join(operators),
        "devices": devices,
    }
