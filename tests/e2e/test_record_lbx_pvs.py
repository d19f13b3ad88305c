"""End to end, two kinds of device in one daemon: an LBX box at 1 kHz x 3 channels with
frame faults and a PVS inflator beside it, on real ptys, into a real InfluxDB.

Every valid sample of both truth files is recorded exactly once with the right
values, and its timestamp is within 5 ms (median; 50 ms p99) of when the simulator took
it. The median is what the clock fit decides (it follows the earliest deliveries, so a
loaded machine's late ones do not move it); the p99 is also how long this machine's
scheduler held up the first samples, before the fit had earlier ones, so it gets a
bound a loaded machine meets, and is printed under "figures".
"""

from __future__ import annotations

import shlex
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, quantile, query_samples, write_config

pytestmark = pytest.mark.e2e

LBX_FAULTS = ("--bad-checksum", "0.03", "--truncate", "0.02", "--garbage", "0.03")
LBX_FAULTS += ("--drop", "0.02", "--sync", "0.05")


def lbx_blocks(truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        t for t in truth if (t["kind"] == "block" and t["delivered"]) or t.get("why") == "dropped"
    ]


def test_lbx_and_pvs_side_by_side(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    lbx = SimProcess(
        short_tmp,
        "lbx0",
        *shlex.split("--rate 1000 --seed 5 --profile fatigue --drift-ppm -60 --resonance"),
        *LBX_FAULTS,
        model="lbx",
    )
    pvs = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "6", "--drift-ppm", "90")
    cfg = write_config(
        short_tmp, influx.url, influx.database, {"box": str(lbx.link), "inflator": str(pvs.link)}
    )
    box = f'driver = "pvs"\nport = "{lbx.link}"'
    cfg.write_text(cfg.read_text().replace(box, box.replace("pvs", "lbx", 1)))
    daemon = DaemonProcess(cfg, asyncio_debug=True)
    try:
        lbx.wait_listening()
        pvs.wait_listening()
        time.sleep(12)
        statuses = [lbx.stop(), pvs.stop()]
        time.sleep(0.5)
        assert daemon.stop() == 0, daemon.log()
    finally:
        lbx.kill()
        pvs.kill()
        daemon.kill()
    assert [s["rx_bytes"] for s in statuses] == [0, 0], "pvlog sent bytes to a streaming device"

    # LBX: every sample of every valid delivered block, once, with its values.
    blocks = lbx_blocks(lbx.truth())
    valid = [b for b in blocks if b["valid"]]
    assert {b.get("why") for b in blocks if not b["valid"]} >= {"bad_crc", "truncated", "dropped"}
    expected = [s for b in valid for s in b["samples"]]
    assert len(expected) > 5000
    rows = query_samples(influx, "box", "pressure_kpa, volume_ml, ibp_mmhg")
    assert len(rows) == len(expected), "each valid sample exactly once, nothing else"
    by_block: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["time"]):
        by_block[r["seq"]].append(r)
    errors_ms = []
    for b in valid:
        got = by_block[b["block_seq"]]
        assert len(got) == len(b["samples"])
        for r, s in zip(got, b["samples"], strict=True):
            assert {k: r[k] for k in s["values"]} == s["values"]
            errors_ms.append(abs(r["time"] - s["host_ns"]) / 1e6)
    assert any(232.05 in (s["values"]["pressure_kpa"],) for s in expected), "sync inside payload"
    lbx_errors = errors_ms

    # Gaps: the samples of the blocks lost between two that arrived.
    gaps = influx.query("SELECT value FROM pv_event WHERE code = 'gap' AND device = 'box'")
    gap_values = sorted(int(v) for _, v in gaps["results"][0]["series"][0]["values"])
    runs, current, started = [], 0, False
    for b in blocks:
        if b["valid"]:
            if current and started:
                runs.append(current)
            current, started = 0, True
        else:
            current += len(b["samples"])
    assert gap_values == sorted(runs)

    # PVS beside it: untouched by the box's faults.
    pvs_valid = [t for t in pvs.truth() if t["kind"] == "sample" and t["delivered"]]
    pvs_rows = {r["seq"]: r for r in query_samples(influx, "inflator")}
    assert len(pvs_rows) == len(pvs_valid) > 500
    for t in pvs_valid:
        assert pvs_rows[t["seq"]]["pressure_kpa"] == t["pressure_kpa"]
    pvs_errors = [abs(pvs_rows[t["seq"]]["time"] - t["host_ns"]) / 1e6 for t in pvs_valid]

    figure(
        f"timestamp error: lbx median {quantile(lbx_errors, 0.5):.2f} ms, p99 "
        f"{quantile(lbx_errors, 0.99):.2f} ms; pvs median {quantile(pvs_errors, 0.5):.2f} ms, "
        f"p99 {quantile(pvs_errors, 0.99):.2f} ms"
    )
    for errors in (lbx_errors, pvs_errors):
        assert quantile(errors, 0.5) < 5
        assert quantile(errors, 0.99) < 50

    events = influx.query("SELECT detail, code FROM pv_event WHERE device = 'box'")["results"][0]
    codes = {c for _, _, c in events["series"][0]["values"]}
    assert {"identity", "mark", "gap"} <= codes
