"""The Grafana dashboard's JSON as Grafana's provisioning needs it, and its queries
against the schema: every measurement, tag and field a query names is one pvlog writes
(docs/schema.md, itself checked against what pvlog writes)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.grafana import datasource_uid, load, panels

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


SESSION_TAGS = {"lot"}
"""The session's configured tags the dashboard groups by (the schema's prose names them)."""


def schema_names() -> set[str]:
    text = SCHEMA.read_text()
    rows = re.findall(r"^\| `(\w+)` \| (?:tag|field) \| `(\w+)` \|", text, re.M)
    assert all(f"`{tag}`" in text.split("| measurement |")[0] for tag in SESSION_TAGS)
    return {m for m, _ in rows} | {n for _, n in rows} | SESSION_TAGS


def queries() -> list[str]:
    doc = load()
    found = [t["query"] for p in panels(doc) for t in p.get("targets", [])]
    found += [a["query"] for a in doc["annotations"]["list"] if "query" in a]
    found += [v["query"] for v in doc["templating"]["list"]]
    return found


def test_the_json_is_what_grafana_provisioning_takes() -> None:
    doc = load()
    assert isinstance(doc["uid"], str) and 0 < len(doc["uid"]) <= 40
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    assert doc["title"] and "id" not in doc, "a provisioned dashboard gets its id from Grafana"
    uid = datasource_uid()
    refs = [p["datasource"] for p in panels(doc) if p["type"] != "row"]
    refs += [t["datasource"] for p in panels(doc) for t in p.get("targets", [])]
    refs += [a["datasource"] for a in doc["annotations"]["list"] if not a.get("builtIn")]
    refs += [v["datasource"] for v in doc["templating"]["list"]]
    assert refs and all(r == {"type": "influxdb", "uid": uid} for r in refs), refs
    ids = [p["id"] for p in panels(doc)]
    assert len(ids) == len(set(ids))
    for p in panels(doc):
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"][
            "w"] <= 24, p["title"]  # fmt: skip
        assert [t["refId"] for t in p.get("targets", [])] == ["A"][: len(p.get("targets", []))]
    assert [v["name"] for v in doc["templating"]["list"]] == ["device", "session", "lot"]


def test_the_panels_keep_peaks_and_mark_bursts() -> None:
    """A burst's peak shows at any zoom: each interval's max and min, never its mean."""
    for p in panels(load()):
        for t in p.get("targets", []):
            assert "mean(" not in t["query"], p["title"]
            if p["type"] == "timeseries" and "pv_sample" in t["query"]:
                assert "max(" in t["query"] and "min(" in t["query"], p["title"]
    (table,) = [p for p in panels(load()) if p["title"] == "Inflations"]
    (burst,) = table["fieldConfig"]["overrides"]
    assert burst["matcher"] == {"id": "byName", "options": "burst"}
    shown = {m["options"]["true"]["text"] for pr in burst["properties"] if pr["id"] == "mappings"
             for m in pr["value"]}  # fmt: skip
    assert shown == {"BURST"}


def test_every_name_a_query_uses_is_in_the_schema() -> None:
    known = schema_names()
    for q in queries():
        named = set(re.findall(r'"(\w+)"', re.sub(r'AS "\w+"', "", q)))
        assert named <= known, f"{q}: {named - known} not in docs/schema.md"
        if not q.startswith("SHOW"):  # a panel's or annotation's: the dashboard's time range
            assert "$timeFilter" in q, q
