"""pvlog's Grafana dashboard run the way Grafana would run it, without Grafana: every
variable's, panel's and annotation's InfluxQL, its variables substituted as Grafana
substitutes them, against a real InfluxDB."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from daemon.influx.v1 import InfluxV1

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "pvlog.json"
DATASOURCE = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "pvlog.yaml"


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def datasource_uid() -> str:
    found = re.search(r"^\s+uid:\s*(\S+)", DATASOURCE.read_text(), re.MULTILINE)
    assert found is not None, "the provisioned datasource has no uid"
    return found.group(1)


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in doc["panels"]:
        yield p
        yield from p.get("panels", [])


def multi(values: Sequence[str]) -> str:
    """A multi-value variable in a regex, as Grafana writes it for InfluxDB."""
    escaped = [re.escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(query: str, devices: Sequence[str], sessions: Sequence[str],
               window_ns: tuple[int, int], interval: str = "1s",
               *, lots: Sequence[str] = ()) -> str:  # fmt: skip
    """``lots`` empty: the lot variable's "All" (its ``allValue``, ``.*``)."""
    start, end = (t // 1_000_000 for t in window_ns)
    return (
        query.replace("$timeFilter", f"time >= {start}ms and time <= {end + 1}ms")
        .replace("$__interval", interval)
        .replace("$device", multi(devices))
        .replace("$session", multi(sessions))
        .replace("$lot", multi(lots) if lots else ".*")
    )


def run(influx: InfluxV1, query: str) -> list[dict[str, Any]]:
    result = influx.query(query)["results"][0]
    assert "error" not in result, f"{query}: {result['error']}"
    series: list[dict[str, Any]] = result.get("series", [])
    return series
