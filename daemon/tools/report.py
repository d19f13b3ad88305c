"""``pvlog report``: each inflation of a session, as a table (and a plot), without InfluxQL.

The samples come from InfluxDB (``--session``) or from recordings (files or
directories); either way they go through the same detector the daemon runs live
(``daemon.acquisition.inflations``), so the report and the ``pv_inflation`` points agree.
One result per session, device and run of the daemon (``Key``): ten specimens recorded
into one directory are ten results, and a restart under the same session name is two,
each with its own cycle numbers, never one trace across the time nobody recorded.
What a damaged recording lost is said (``daemon.tools.damage``). Pressures are shown
in atm, as everywhere a person reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from daemon.acquisition.inflations import (
    BASELINE_ATM,
    THRESHOLD_ATM,
)
from daemon.acquisition.stamping import identity_of
from daemon.audit import tool_entry
from daemon.config import ConfigError, load_config
from daemon.influx.client import InfluxUnavailable
from daemon.influx.v1 import InfluxV1
from daemon.recordings.findings import Findings
from daemon.recordings.format import time_ns_of
from daemon.recordings.reader import read, recording_files, recordings_or_problem, select
from daemon.reports.analysis import DeviceReport, Trace, analyse, lend_diameters
from daemon.reports.text import as_json, burst_margin_pct, table
from daemon.tools import damage
from daemon.tools.arguments import handled_by, output_format, positive, positive_int
from daemon.tools.outputs import unwritable
from daemon.version import pvlog_version
from drivers.units import PRESSURE_UNITS

PAGE = 50_000
"""Rows per InfluxDB query: a long session is read in pages, never in one answer."""


# -- where the samples come from ---------------------------------------------


Key = tuple[str, str, str]
"""(session, device, run): what one result is of. Sessions recorded in one directory,
or at the same time under one device name, and runs of one session name (a daemon
restarted), are never merged."""


def _trace(traces: dict[Key, Trace], session: str, device: str, run: str) -> Trace:
    trace = traces.get((session, device, run))
    if trace is None:
        trace = traces[session, device, run] = Trace(device, session=session, run=run)
        trace.learn({"session": session, **({"run": run} if run else {})})
    return trace


def from_influx(
    client: InfluxV1, session: str, device: str | None = None, *, page: int = PAGE
) -> list[Trace]:
    """The session's samples by device and run, read in pages of ``page`` rows."""
    where = "session = $session" + (" AND device = $device" if device else "")
    params = {"session": session, "device": device or ""}
    traces: dict[Key, Trace] = {}
    last = -(2**63)
    while True:
        # The names are bound parameters; only integers go into the text.
        q = (
            "SELECT pressure_kpa, volume_ml, diameter_mm, device, run FROM pv_sample WHERE "  # noqa: S608
            f"{where} AND time > {last} ORDER BY time LIMIT {int(page)}"
        )
        result = client.query(q, params)["results"][0]
        if "error" in result:
            raise InfluxUnavailable(result["error"])
        series = result.get("series") or []
        if not series:
            break
        cols = series[0]["columns"]
        rows = series[0]["values"]
        it, ip, iv, idev = (cols.index(c) for c in ("time", "pressure_kpa", "volume_ml", "device"))
        irun = cols.index("run") if "run" in cols else None  # none before runs had ids
        idia = cols.index("diameter_mm") if "diameter_mm" in cols else None
        for row in rows:
            run = (row[irun] if irun is not None else None) or ""
            trace = _trace(traces, session, row[idev], run)
            trace.add(row[it], row[ip], row[iv])
            if idia is not None and row[idia] is not None:
                trace.diameter_mm.append((row[it], row[idia]))
        last = rows[-1][it]
        if len(rows) < page:
            break
    _influx_context(client, traces, session, params, where)
    return _ordered(traces)


SESSION_FIELDS = {"time", "state", "host", "pvlog_version", "devices", "session", "source", "run"}
"""A ``pv_session`` point's own fields; the rest are the session's tags."""


def _influx_context(
    client: InfluxV1, traces: dict[Key, Trace], session: str, params: dict[str, str], where: str
) -> None:
    """Marks, identities and the session's tags, for the report's titles and plot."""
    q = f"SELECT detail, device, code, run FROM pv_event WHERE {where}"  # noqa: S608
    for series in client.query(q, params)["results"][0].get("series") or []:
        cols = series["columns"]
        for row in series["values"]:
            r = dict(zip(cols, row, strict=True))
            trace = traces.get((session, r["device"], r.get("run") or ""))
            if trace is None:
                continue
            if r["code"] == "mark":
                trace.marks.append((r["time"], r["detail"] or ""))
            elif r["code"] == "identity":
                trace.learn(identity_of(r["detail"] or ""))
    # Each run's own start: a session name reused across runs (a fixed [session] name)
    # may carry other tags in each, as its recordings do.
    q = "SELECT * FROM pv_session WHERE session = $session AND state = 'start'"
    by_run: dict[str, dict[str, str]] = {}
    for series in client.query(q, params)["results"][0].get("series") or []:
        for row in series["values"]:
            r = dict(zip(series["columns"], row, strict=True))
            tags = by_run.setdefault(str(r.get("run") or ""), {})
            for col, value in r.items():
                if col not in SESSION_FIELDS and value is not None:
                    tags.setdefault(f"tag.{col}", str(value))
    first = next(iter(by_run.values()), {})  # data from before runs had ids
    for (_, _, run), trace in traces.items():
        trace.learn(by_run.get(run, first))


def from_recordings(
    paths: Iterable[Path], device: str | None = None, findings: list[Findings] | None = None
) -> list[Trace]:
    """The samples of MCAP recordings (files, or directories of them), by session, device
    and run, with their marks, the session's tags and the device's identity. What a
    damaged file lost is added to ``findings``."""
    traces: dict[Key, Trace] = {}
    for path in recording_files(paths):
        about: dict[str, str] = {}
        session = run = "?"
        told: set[str] = set()
        """The devices told this file's ``about`` (once each, not per sample)."""
        for item in read(path, findings):
            if isinstance(item, dict):
                session, run = item.get("session", "?"), item.get("run", "")
                about = {k: v for k, v in item.items() if k.startswith("tag.")}
                about |= identity_of(item.get("identity", ""))  # known at the file's opening
                continue
            topic, _, message = item
            if topic not in ("samples", "events"):
                continue  # the raw bytes
            name = message["device"]
            if device and name != device:
                continue
            trace = _trace(traces, session, name, run)
            if name not in told:
                told.add(name)
                trace.learn(about)
                trace.files.append(str(path))
            if topic == "samples":
                p, v = message.get("pressure_kpa"), message.get("volume_ml")
                trace.add(time_ns_of(message), p, v)
                if (d := message.get("diameter_mm")) is not None:
                    trace.diameter_mm.append((time_ns_of(message), d))
            elif topic == "events" and message["code"] == "mark":
                trace.marks.append((time_ns_of(message), message["detail"]))
            elif topic == "events" and message["code"] == "identity":
                trace.about.update(identity_of(message["detail"]))  # the device's own word
    for trace in traces.values():  # parts of one device are read in name (= time) order;
        _sort(trace)  # sort anyway, for files given out of order
    return _ordered(traces)


def _ordered(traces: dict[Key, Trace]) -> list[Trace]:
    """By session, then device, then run in time order."""
    return sorted(traces.values(), key=lambda t: (t.session, t.device, t.time_ns[:1] or [0], t.run))


def _sort(trace: Trace) -> None:
    if all(a < b for a, b in zip(trace.time_ns, trace.time_ns[1:], strict=False)):
        return
    rows = sorted(zip(trace.time_ns, trace.pressure_kpa, trace.volume_ml, strict=True))
    trace.time_ns = [r[0] for r in rows]
    trace.pressure_kpa = [r[1] for r in rows]
    trace.volume_ml = [r[2] for r in rows]


# -- the command ----------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Each inflation of a session: start, peak, time to peak, hold, volume at "
        "peak, deflation, burst; from InfluxDB (--session) or from recordings (FILE/DIR). "
        "One result per session, device and run of the daemon."
    )
    p.add_argument("recordings", nargs="*", type=Path, help="MCAP files or directories")
    p.add_argument(
        "--session", help="this session: from InfluxDB, or only its files among the recordings"
    )
    p.add_argument("-c", "--config", help="take InfluxDB's address and database from this file")
    p.add_argument("--influx", default="http://127.0.0.1:8086", help="InfluxDB URL (without -c)")
    p.add_argument("--database", default="pvlog", help="InfluxDB database (without -c)")
    p.add_argument("--device", help="only this device")
    p.add_argument(
        "--threshold-atm",
        type=float,
        default=THRESHOLD_ATM,
        help="an inflation begins above this (default %(default)s)",
    )
    p.add_argument("--baseline-atm", type=float, default=BASELINE_ATM,
                   help="and ends back below this (default %(default)s)")  # fmt: skip
    p.add_argument(
        "--plot",
        type=Path,
        help="write the traces with inflations, and P-V: PNG, SVG or PDF by the file's suffix",
    )
    output_format(p, "one document: {results: [one per session, device and run], damaged: [...]}")
    p.add_argument(
        "--units", choices=PRESSURE_UNITS, default="atm",
        help="pressure in the table and plot (default atm, a balloon's rated pressures' unit)",
    )  # fmt: skip
    p.add_argument(
        "--rated-burst-atm",
        type=positive,
        help="the balloon's rated burst pressure, for a burst run",
    )
    p.add_argument("--lot", help="the lot's results across its specimens (sessions tagged lot=)")
    p.add_argument(
        "--cycles-target", type=positive_int, help="--lot: a fatigue specimen's target cycles"
    )
    p.add_argument(
        "--nominal-atm", type=positive, help="--lot: the balloon's nominal pressure (label table)"
    )
    p.add_argument(
        "--fatigue-atm", type=positive,
        help="--lot: the fatigue pressure cycles are counted at (else the tag fatigue_atm)",
    )  # fmt: skip
    p.add_argument(
        "--test", choices=("burst", "compliance", "fatigue"),
        help="--lot: the test of specimens whose sessions have no test tag (said on the document)",
    )  # fmt: skip
    p.add_argument("--pdf", type=Path, help="--lot: write the lot's test report to this PDF")
    p.add_argument(
        "--key", action="append", type=Path, default=[], metavar="PUB",
        help="--lot: a public key the manifests must be signed by (repeatable: the lab's)",
    )  # fmt: skip
    p.add_argument(
        "--allow-unverified", action="store_true",
        help="--lot: count a specimen whose file differs from its manifest or is in none "
        "(said on the document)",
    )  # fmt: skip
    damage.add_flag(p)
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    if not (args.session or args.recordings or args.lot):
        args.verb_parser.error("give --session (from InfluxDB) or recording files")
    if not args.baseline_atm < args.threshold_atm:
        args.verb_parser.error("--baseline-atm must be below --threshold-atm")
    if args.pdf is not None and not args.lot:
        args.verb_parser.error("--pdf is the lot's report: give --lot")
    if args.lot and (args.device or args.session):
        args.verb_parser.error("--lot judges every session and device of the lot: "
                               "no --session, no --device")  # fmt: skip
    for path, option in ((args.plot, "--plot"), (args.pdf, "--pdf")):
        if (why := unwritable(path, option)) is not None:
            print(f"pvlog report: {why}", file=sys.stderr)
            return 2
    if args.lot:
        try:
            import scipy  # noqa: F401
        except ImportError:
            print("pvlog report: --lot needs scipy: pip install 'pvlog[lot]'", file=sys.stderr)
            return 2
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "pvlog report: --plot needs matplotlib: pip install 'pvlog[plot]'", file=sys.stderr
            )
            return 2
        from daemon.reports.plot import plot_format

        try:
            plot_format(args.plot)  # refused before any reading, not after
        except ValueError as exc:
            print(f"pvlog report: {exc}", file=sys.stderr)
            return 2
    findings: list[Findings] = []
    try:
        traces = _load(args, findings)
    except (ConfigError, InfluxUnavailable, OSError) as exc:
        print(f"pvlog report: {exc}", file=sys.stderr)
        return 1 if not isinstance(exc, ConfigError) else 2
    failed = damage.say("pvlog report", findings, allow=args.allow_damaged)
    if args.lot:
        from daemon.tools.lot import run_lot

        return run_lot(args, traces, findings, failed)
    if not traces:
        print("pvlog report: no samples found", file=sys.stderr)
        return 1
    reports = [
        analyse(t, threshold_atm=args.threshold_atm, baseline_atm=args.baseline_atm) for t in traces
    ]
    lend_diameters(reports)  # a micrometer's readings to its session's inflation device
    if args.format == "json":
        doc = {
            "format": JSON_FORMAT,
            "pvlog_version": pvlog_version(),
            "results": [as_json(r, args.rated_burst_atm) for r in reports],
            "damaged": [f.as_json() for f in findings if f.damaged],
        }
        print(json.dumps(doc, indent=1))
    else:
        for r in reports:
            print(table(r, args.units, args.rated_burst_atm) + "\n")
    if args.plot is not None:
        from daemon.reports.plot import save_plot

        save_plot(reports, args.plot, args.units)
        print(f"plot written to {args.plot}", file=sys.stderr)
    _audit(args, reports, [f for t in traces for f in t.files])
    return 1 if failed else 0


def _audit(args: argparse.Namespace, reports: list[DeviceReport], read: list[str]) -> None:
    """The report in the audit trail: what it covered and found against the RBP given,
    each file it read and wrote with its SHA-256."""
    results = [{"session": r.trace.session, "device": r.trace.device, "run": r.trace.run,
                "burst_margin_pct": burst_margin_pct(r, args.rated_burst_atm)}
               for r in reports]  # fmt: skip
    what = {"session": args.session, "lot": args.lot, "results": results,
            "rated_burst_atm": args.rated_burst_atm,
            "rbp_from": "--rated-burst-atm" if args.rated_burst_atm else None}  # fmt: skip
    tool_entry.made("report_made", args.config, args.recordings, what, [args.plot, args.pdf],
                    read=read)  # fmt: skip


JSON_FORMAT = "pvlog-report/2"
"""``--json``'s document; /1 was JSON Lines, one object per device."""


def _load(args: argparse.Namespace, findings: list[Findings]) -> list[Trace]:
    if args.recordings:
        _, why = recordings_or_problem(args.recordings)
        if why is not None:
            raise OSError(why)
        files = select(recording_files(args.recordings), args.session, None)
        if not files:
            raise OSError(f"no recording of session {args.session!r} in the files given")
        return from_recordings(files, args.device, findings)
    url, database = args.influx, args.database
    if args.config:
        config = load_config(args.config, devices=False)
        url, database = config.influx.url, config.influx.database
    client = InfluxV1(url, database)
    try:
        if args.lot and not args.session:
            from daemon.tools.lot import influx_sessions

            sessions = influx_sessions(client, args.lot)
            return [t for s in sessions for t in from_influx(client, s, args.device)]
        return from_influx(client, args.session, args.device)
    finally:
        client.close()
