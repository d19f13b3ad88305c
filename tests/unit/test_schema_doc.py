"""docs/schema.md against what pvlog writes: every measurement, tag and field of the
lines the code builds is on the page, and the page names nothing the code does not write.
The lines come from the same functions ``pvlog run`` and ``pvlog import`` call."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from daemon.acquisition.inflations import Inflation
from daemon.acquisition.status import DeviceStatus
from daemon.config import load_config
from daemon.influx import schema
from daemon.outbox.store import Depth
from daemon.pipeline import StampedEvent
from daemon.service.health import HealthReporter
from drivers import lbx, pvs

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| (tag|field) \| `([a-z0-9_<>]+)` \|", re.MULTILINE)


def parse(line: str) -> tuple[str, set[tuple[str, str]]]:
    """(measurement, {(kind, name)}) of one line (plain names: no escapes needed here)."""
    head, fields, _time = line.rsplit(" ", 2)
    measurement, *tags = head.split(",")
    names = {("tag", t.split("=")[0]) for t in tags}
    names |= {("field", f.split("=")[0]) for f in fields.split(",")}
    return measurement, names


def written() -> set[tuple[str, str, str]]:
    lines = []
    channels = {field for field, _units in lbx._FIELDS.values()}
    # What the shipped examples' config-defined instruments write (the micrometer's).
    for example in sorted((Path(__file__).parents[2] / "config").glob("*.toml")):
        channels |= {f.field for d in load_config(example).device for f in d.fields}
    values = dict.fromkeys(channels | {"pressure_kpa", "volume_ml"}, 1.5)
    lines.append(schema.sample_lines("d", "s", {}, "r").encode(values, 1, 0, 1))
    lines.append(schema.event_line("d", "s", StampedEvent(1, "mark", "x", 1.0), "r"))
    inflation = Inflation(1, 1, 2, 3.0, 1, 1.0, 1.0, 1.0, 1.0, True, 1, True, True)
    lines.append(schema.inflation_line("d", "s", inflation, "r"))
    lines.append(schema.session_line("s", schema.session_fields("start", "h", ["d"], {}), 1, "r"))
    status = DeviceStatus("d", "lbx", "/dev/x")
    status.recording = SimpleNamespace(failed=False, dropped=0)  # type: ignore[assignment]
    status.dropped = dict.fromkeys(lbx.DROP_REASONS, 0)
    reporter = HealthReporter(
        [(status, lambda *a: None)],
        SimpleNamespace(max_bytes=1, evicted_batches=0, evicted_lines=0),  # type: ignore[arg-type]
        SimpleNamespace(commit_failures=0, dropped_lines=0, failing=False),  # type: ignore[arg-type]
        SimpleNamespace(health=lambda: {"lines_sent": 1, "requests": 1, "retries": 0,
                                        "write_latency_ms": 1.0}),  # type: ignore[arg-type]
        recording=True,
        host="bench-pc",
    )  # fmt: skip
    lines += HealthReporter.lines(reporter, Depth(1, 1, 0, 1, 1), 1)
    recorder = {"batches_taken": 1, "lines_taken": 1, "ignored_messages": 0, "lines_sent": 1,
                "outbox_lines": 1, "outbox_bytes": 1, "dead_letters": 0}  # fmt: skip
    lines.append(schema.component_health_line("recorder", recorder, 1, "rec-1"))
    lines.append(schema.audit_line("session_start", "h", 1, seq=1, who="alice",
                                   what={}, sha256="0" * 64, session="s",
                                   trail="9" * 64))  # fmt: skip
    out = set()
    for line in lines:
        measurement, names = parse(line)
        for kind, name in names:
            shown = "dropped_<reason>" if name.startswith("dropped_") else name
            out.add((measurement, kind, shown))
    return out


def test_the_page_names_exactly_what_pvlog_writes() -> None:
    documented = set(ROW.findall(DOC.read_text()))
    assert documented == written()


def test_the_drivers_drop_reasons_are_what_dropped_reason_covers() -> None:
    status = DeviceStatus("d", "lbx", "/dev/x")
    status.dropped = dict.fromkeys(lbx.DROP_REASONS, 0)
    assert {f"dropped_{r}" for r in lbx.DROP_REASONS} <= set(status.health())
    assert "garbage_bytes" in lbx.DROP_REASONS and "garbage_bytes" in pvs.DROP_REASONS
