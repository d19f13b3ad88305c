"""``pvlog recording export``: a session's samples, events or inflations as a table.

For a spreadsheet, pandas or a test record. The unit is in each column's name
(``pressure_atm``, ``volume_ml``), not in a second row that would stop a reader
parsing the numbers. A reading is rounded to its device's resolution in the unit
shown (an LBX's 0.01 kPa step is five decimals of atm): the identity event says each
field's step. Anything else, or a device that never said, gets nine significant
digits: short of float noise (``2.4170000000000003`` is ``2.417``).
Each row says when (``time_ns``; ``time_utc``, which a CSV writes as a spreadsheet
parses it, ``2026-12-06 08:12:03.123``, and JSON lines as ISO 8601 with its ``Z``;
``elapsed_s`` since the first sample of the export), of what (``session``, ``device``,
the device's ``serial``), and under which session tags (``tag_lot``, ``tag_operator``:
the last columns, on every row). ``--delimiter ';'`` for a spreadsheet that takes the
comma as its decimal mark.
Files are read in the order given (a directory: its recordings in time order), so a
session split over several files is one table.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from daemon.acquisition.stamping import identity_of
from daemon.recordings.findings import Findings
from daemon.recordings.format import time_ns_of
from daemon.recordings.reader import NOT_CHANNELS, iso, read
from daemon.reports.analysis import Trace, analyse, lend_diameters
from daemon.reports.steps import diameter_over, marks, steps
from daemon.tools.importer import recording_lines
from daemon.tools.progress import Progress
from drivers.records import parse_resolution
from drivers.units import per_kpa

TABLES = ("samples", "events", "inflations", "steps", "marks")


def cell(value: Any) -> Any:
    """A CSV cell: floats to nine significant digits, nothing as empty, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.9g}"
    return value


def places(step: float) -> int:
    """Decimals that show a reading ``step`` apart from its neighbours, and no more."""
    return max(0, math.ceil(round(-math.log10(step), 6)))


class _Source(NamedTuple):
    """What a file says about its rows: the session, the device's serial, and how many
    decimals each field's readings resolve in the units exported; and the daemon run
    that recorded it (a session name reused by a restart is two runs)."""

    session: str
    serial: str
    places: dict[str, int]
    run: str = ""
    tags: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple's default, never mutated
    """The session's tags (lot, operator...), as the file's metadata has them."""

    def fix(self, field: str, value: float | None) -> float | None:
        n = self.places.get(field)
        return value if value is None or n is None else round(value, n)


class _Files:
    """The files' samples and events in order, with what each file says of its device."""

    def __init__(self, paths: Sequence[Path], units: str) -> None:
        self.paths = paths
        self.channels: list[str] = []
        self.sources: dict[Path, _Source] = {}
        self.first_ns: int | None = None
        self.findings: list[Findings] = []
        """What each file lost (damaged) or lacked (cut short), said after."""
        found: set[str] = set()
        keys: set[str] = set()
        factor = per_kpa(units)
        for path in paths:  # a first pass: memory stays flat however long the files
            session, identity, said, run = "?", None, "", ""
            tags: dict[str, str] = {}
            for item in read(path, self.findings):
                if isinstance(item, dict):
                    session, run = item.get("session", session), item.get("run", "")
                    said = item.get("identity", said)  # known when the file was opened
                    tags = {k[4:]: v for k, v in item.items() if k.startswith("tag.")}
                    continue
                topic, _, data = item
                if topic == "samples":
                    found.update(k for k in data if k not in NOT_CHANNELS)
                    t = time_ns_of(data)
                    self.first_ns = t if self.first_ns is None else min(self.first_ns, t)
                elif topic == "events" and data["code"] == "identity" and identity is None:
                    identity = identity_of(data["detail"])
            identity = identity or identity_of(said)
            steps = parse_resolution(identity.get("resolution", ""))
            shown = {f: step * factor if f.endswith("_kpa") else step for f, step in steps.items()}
            self.sources[path] = _Source(
                session, identity.get("serial", ""), {f: places(s) for f, s in shown.items()},
                run, tags,
            )  # fmt: skip
            keys.update(tags)
        self.channels = sorted(found)
        self.tag_keys = sorted(keys)
        """Every session tag any file has: a column each (``tag_lot``), on every row."""

    def messages(self, topic: str) -> Iterator[tuple[_Source, Any]]:
        """Every ``topic`` message, file by file, with what its file says."""
        for path in self.paths:
            source = self.sources[path]
            for item in read(path):
                if not isinstance(item, dict) and item[0] == topic:
                    yield source, item[2]

    def tagged(self, head: list[str], row: list[Any], src: _Source) -> tuple[list[str], list[Any]]:
        """``row`` with its session's tags after it (empty where a session has none)."""
        return head + [f"tag_{k}" for k in self.tag_keys], row + [
            src.tags.get(k, "") for k in self.tag_keys
        ]

    def elapsed(self, t: int) -> float:
        return round((t - (self.first_ns or t)) / 1e9, 6)


def export(
    paths: Sequence[Path],
    fmt: str,
    out: IO[str],
    progress: Progress | None = None,
    *,
    table: str = "samples",
    units: str = "kPa",
    findings: list[Findings] | None = None,
    delimiter: str = ",",
) -> int:
    """Write ``table`` of ``paths`` to ``out`` (csv, jsonl, or lp for samples); how many rows.
    What each file lost (damaged) or lacked (cut short) is added to ``findings``."""
    if fmt == "lp":  # as pvlog run writes pv_sample, under the file's session
        n = 0
        lines = recording_lines(
            paths, session=None, events=False, progress=progress, findings=findings
        )
        for line in lines:
            out.write(line + "\n")
            n += 1
        return n
    files = _Files(paths, units)
    if findings is not None:
        findings += files.findings
    rows = {"samples": _samples, "events": _events, "inflations": _inflations,
            "steps": _steps, "marks": _marks}[table]  # fmt: skip
    n = 0
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    utc: list[int] = []
    for head, row in rows(files, units):
        if fmt == "jsonl":
            out.write(json.dumps(dict(zip(head, row, strict=True))) + "\n")
        else:
            if n == 0:
                writer.writerow(head)
                utc = [i for i, name in enumerate(head) if name.endswith("_utc")]
            for i in utc:  # as a spreadsheet parses a time: the column's name says UTC
                row[i] = excel_time(row[i])
            writer.writerow([cell(v) for v in row])
        n += 1
        if progress is not None:
            progress.add()
    return n


Rows = Iterator[tuple[list[str], list[Any]]]


def _samples(files: _Files, units: str) -> Rows:
    factor = per_kpa(units)
    names = [_column(c, units) for c in files.channels]
    head = ["time_ns", "time_utc", "elapsed_s", "session", "device", "serial", "seq", "flags"]
    head += names
    kpa = [c.endswith("_kpa") for c in files.channels]
    for src, s in files.messages("samples"):
        t = time_ns_of(s)
        values = []
        for c, is_kpa in zip(files.channels, kpa, strict=True):
            v = s.get(c)
            values.append(src.fix(c, v * factor if v is not None and is_kpa else v))
        yield files.tagged(head, [t, iso(t), files.elapsed(t), src.session, s["device"],
                                  src.serial, s["seq"], s["flags"], *values], src)  # fmt: skip


def excel_time(iso_utc: str) -> str:
    """``2026-12-06T08:12:03.123Z`` as a spreadsheet parses it: ``2026-12-06 08:12:03.123``
    (the column's name says UTC; ``time_ns`` keeps the nanoseconds)."""
    return iso_utc.replace("T", " ").removesuffix("Z")


def _column(channel: str, units: str) -> str:
    """A channel's column name with its unit: ``pressure_kpa`` in atm is ``pressure_atm``."""
    return channel[: -len("kpa")] + units.lower() if channel.endswith("_kpa") else channel


def _events(files: _Files, units: str) -> Rows:
    head = ["time_ns", "time_utc", "elapsed_s", "session", "device", "serial", "code",
            "detail", "value"]  # fmt: skip
    for src, e in files.messages("events"):
        t = time_ns_of(e)
        yield files.tagged(head, [t, iso(t), files.elapsed(t), src.session, e["device"],
                                  src.serial, e["code"], e["detail"], e["value"]], src)  # fmt: skip


Traces = dict[tuple[str, str, str, str], tuple[Trace, _Source]]


def _traces(files: _Files) -> Traces:
    """Each (session, device, serial, run)'s samples, diameters, marks and session tags,
    as the report reads them: a run's cycles count from 1, as live."""
    traces: Traces = {}
    for src, s in files.messages("samples"):
        key = (src.session, s["device"], src.serial, src.run)
        if key not in traces:
            traces[key] = (Trace(s["device"], src.session, src.run), src)
            traces[key][0].learn({f"tag.{k}": v for k, v in src.tags.items()})
        trace = traces[key][0]
        trace.add(time_ns_of(s), s.get("pressure_kpa"), s.get("volume_ml"))
        if (d := s.get("diameter_mm")) is not None:
            trace.diameter_mm.append((time_ns_of(s), d))
    for src, e in files.messages("events"):
        marked = traces.get((src.session, e["device"], src.serial, src.run))
        if marked is not None and e["code"] == "mark":
            marked[0].marks.append((time_ns_of(e), e["detail"]))
    return traces


def _steps(files: _Files, units: str) -> Rows:
    """Each step of each stepped inflation (a compliance test's result), one row each,
    with the balloon's diameter where a micrometer read it beside the device (the mean
    over the hold, as the report's)."""
    factor = per_kpa(units)
    head = ["start_ns", "start_utc", "elapsed_s", "session", "device", "serial", "cycle",
            "nominal_atm", f"pressure_{units.lower()}", "volume_ml", "diameter_mm", "held_s",
            "run"]  # fmt: skip
    traces = _traces(files)
    reports = [analyse(trace) for trace, _ in traces.values()]
    lend_diameters(reports)
    for ((session, device, serial, run), (_, src)), r in zip(traces.items(), reports, strict=True):
        for f in r.inflations:
            for s in steps(r.trace, f.start_ns, f.end_ns):
                held = None if r.note else s.held_s  # a replay's pace: not the balloon's time
                yield files.tagged(head, [s.start_ns, iso(s.start_ns), files.elapsed(s.start_ns),
                                          session, device, serial, f.cycle, s.nominal_atm,
                                          src.fix("pressure_kpa", s.pressure_kpa * factor),
                                          src.fix("volume_ml", s.volume_ml),
                                          diameter_over(r.diameter_mm, s.start_ns, s.end_ns),
                                          held, run], src)  # fmt: skip


def _marks(files: _Files, units: str) -> Rows:
    """Each MARK with the pressure and volume at it."""
    factor = per_kpa(units)
    head = ["time_ns", "time_utc", "elapsed_s", "session", "device", "serial", "detail",
            f"pressure_{units.lower()}", "volume_ml", "run"]  # fmt: skip
    for (session, device, serial, run), (trace, src) in _traces(files).items():
        for m in marks(trace):
            p = None if m.pressure_kpa is None else m.pressure_kpa * factor
            yield files.tagged(head, [m.time_ns, iso(m.time_ns), files.elapsed(m.time_ns),
                                      session, device, serial, m.detail,
                                      src.fix("pressure_kpa", p),
                                      src.fix("volume_ml", m.volume_ml), run], src)  # fmt: skip


def _inflations(files: _Files, units: str) -> Rows:
    """The inflations the report finds (the same detector), one row each."""
    factor = per_kpa(units)
    head = ["start_ns", "start_utc", "elapsed_s", "session", "device", "serial", "cycle",
            f"peak_pressure_{units.lower()}", "time_to_peak_s", "hold_s", "volume_at_peak_ml",
            "deflation_s", "duration_s", "burst", "cut_start", "cut_end", "run"]  # fmt: skip
    for (session, device, serial, run), (trace, src) in _traces(files).items():
        for f in analyse(trace).inflations:
            yield files.tagged(head, [
                f.start_ns, iso(f.start_ns), files.elapsed(f.start_ns), session, device, serial,
                f.cycle, src.fix("pressure_kpa", f.peak_kpa * factor), f.time_to_peak_s,
                f.hold_s, src.fix("volume_ml", f.volume_at_peak_ml), f.deflation_s,
                f.duration_s, f.burst, f.cut_start, f.cut_end, run,
            ], src)  # fmt: skip
