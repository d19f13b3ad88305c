"""``pvlog report --lot LOT``: a lot's results across its specimens, from recordings or InfluxDB.

The specimens are the sessions tagged ``lot=LOT`` (``[session] tags``, ``pvlog session
start --tag lot=...``, the page's tags), each read as ``pvlog report`` reads one
(``daemon.tools.report``) and judged together (``daemon.reports.lot``). From recordings,
each value names its files with their SHA-256 from the manifests beside them.

Needs scipy (the ``lot`` extra) for the tolerance factor and the normality test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daemon.influx.client import InfluxUnavailable
from daemon.influx.v1 import InfluxV1
from daemon.recordings.findings import Findings
from daemon.recordings.manifest import SUFFIX
from daemon.reports.analysis import Trace, analyse
from daemon.reports.lot import lot_document, specimen_of
from daemon.version import pvlog_version


def hashes(files: Iterable[str]) -> list[dict[str, str]]:
    """Each file with its SHA-256 as its manifest lists it (empty: no manifest says)."""
    out = []
    for name in files:
        path = Path(name)
        sha = ""
        for manifest in sorted(path.parent.glob(f"*{SUFFIX}")):
            try:
                doc = json.loads(manifest.read_text())
            except (OSError, ValueError):
                continue
            sha = next((e.get("sha256", "") for e in doc.get("files", [])
                        if e.get("name") == path.name), sha)  # fmt: skip
        out.append({"file": path.name, "sha256": sha})
    return out


def influx_sessions(client: InfluxV1, lot: str) -> list[str]:
    """The sessions whose start says ``lot``, in name order."""
    q = "SELECT state FROM pv_session WHERE lot = $lot AND state = 'start' GROUP BY session"
    result = client.query(q, {"lot": lot})["results"][0]
    if "error" in result:
        raise InfluxUnavailable(result["error"])
    return sorted({s["tags"]["session"] for s in result.get("series") or []})


def of_lot(traces: Iterable[Trace], lot: str) -> list[Trace]:
    return [t for t in traces if t.about.get("tag.lot") == lot]


def document(args: argparse.Namespace, traces: list[Trace], findings: list[Findings]) -> Any:
    lot = of_lot(traces, args.lot)
    # A micrometer is a device of its own in the specimen's session and run: its trace
    # has diameters and no pressure, and lends them to the inflation device's steps.
    diameters: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for t in lot:
        diameters.setdefault((t.session, t.run), []).extend(t.diameter_mm)
    specimens = [
        specimen_of(
            analyse(t, threshold_atm=args.threshold_atm, baseline_atm=args.baseline_atm),
            hashes(t.files),
            sorted(diameters.get((t.session, t.run), [])),
        )
        for t in lot
        if t.time_ns  # a device with pressures: the inflation device
    ]
    # The labelled values: a flag, else the lot's session tags (rbp_atm, nominal_atm, cycles).
    rbp = args.rated_burst_atm if args.rated_burst_atm is not None else _tag(lot, "rbp_atm")
    nominal = args.nominal_atm if args.nominal_atm is not None else _tag(lot, "nominal_atm")
    cycles = args.cycles_target if args.cycles_target is not None else _tag(lot, "cycles")
    doc = lot_document(args.lot, specimens, rbp_atm=rbp, nominal_atm=nominal,
                       cycles_target=None if cycles is None else int(cycles))  # fmt: skip
    doc["damaged"] = [f.as_json() for f in findings if f.damaged]
    doc["pvlog_version"] = pvlog_version()  # the build that made it
    if args.pdf is not None:
        from daemon.reports.lot_pdf import save_lot_pdf

        pages = save_lot_pdf(doc, args.pdf, title_block(lot, doc), nominal)
        print(f"lot report written to {args.pdf} ({pages} pages)", file=sys.stderr)
    return doc


def title_block(traces: Iterable[Trace], doc: dict[str, Any]) -> dict[str, Any]:
    """What the report's first page names: devices (model, serial), operator, build."""
    devices = sorted({
        " ".join(x for x in (t.device, t.about.get("model", ""), t.about.get("serial", "")) if x)
        for t in traces
    })  # fmt: skip
    operators = sorted({t.about["tag.operator"] for t in traces if t.about.get("tag.operator")})
    tests: dict[str, int] = {}
    for s in doc["specimens"]:
        tests[s["test"]] = tests.get(s["test"], 0) + 1
    return {
        "made_ns": time.time_ns(),
        "version": f"pvlog {pvlog_version()}",
        "operator": ", ".join(operators),
        "devices": devices,
        "tests": tests,
    }


def text(doc: dict[str, Any]) -> str:
    """The lot's results for a person: a block per test, the verdicts first."""
    lines = [f"lot {doc['lot']}: {len(doc['specimens'])} specimen(s)"]
    b = doc["burst"]
    if b["specimens"]:
        lines.append(f"burst: {b['n']} burst of {len(b['specimens'])}")
        if "k" in b:
            verdict = {True: "PASS", False: "FAIL", None: "no RBP given"}[b["pass"]]
            lines.append(
                f"  mean {b['mean_atm']:.2f} atm, SD {b['sd_atm']:.3f}, min {b['min_atm']:.2f};"
                f" k = {b['k']:.3f} (99.9 % at 95 %): lower bound {b['lower_bound_atm']:.2f}"
                f" atm against RBP {b['rbp_atm']}: {verdict}"
            )
        lines += [f"  warning: {w}" for w in b["warnings"]]
        for r in b["specimens"]:
            said = (
                f"{r['burst_pressure_atm']:.2f} atm"
                if r["burst"]
                else f"did not burst (highest {r['highest_pressure_atm']:.2f} atm)"
            )
            lines.append(f"  {r['specimen']:<16} {said}  [{r['provenance']['session']}]")
    f = doc["fatigue"]
    if f["specimens"]:
        lines.append(f"fatigue: {f['survived']} of {f['n']} survived; {f['statement']}")
        for r in f["specimens"]:
            end = "survived" if r["survived"] else f"failed at cycle {r['failed_at_cycle']}"
            lines.append(
                f"  {r['specimen']:<16} {r['cycles']} cycles at {r['target_atm']:.2f} atm, {end}"
            )
    for step in doc["compliance"]:
        lines.append(
            f"compliance {step['nominal_atm']:>5.1f} atm: n {step['n']}, diameter mean "
            f"{_n(step['mean_diameter_mm'], 3)} mm SD {_n(step['sd_diameter_mm'], 4)}, "
            f"volume mean {_n(step['mean_volume_ml'], 4)} mL SD {_n(step['sd_volume_ml'], 4)}"
        )
    for row in doc["label"]:
        how = " (interpolated)" if row["interpolated"] else ""
        lines.append(f"label {row['pressure_atm']:>5.1f} atm: {row['diameter_mm']:.2f} mm{how}")
    return "\n".join(lines)


def _n(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def _tag(traces: Iterable[Trace], key: str) -> float | None:
    """A labelled value from the lot's session tags (the first that says it)."""
    for t in traces:
        value = t.about.get(f"tag.{key}")
        if value:
            try:
                return float(value)
            except ValueError:
                continue
    return None
