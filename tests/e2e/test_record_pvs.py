"""End to end: the simulator on a pty with corruptions, `pvlog run`, a real InfluxDB.

Every valid sample the simulator delivered is in InfluxDB exactly once with the
right values; no corrupted sentence made a point; SIGTERM lost nothing; and the
device received not one byte.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, quantile, query_samples, write_config

pytestmark = pytest.mark.e2e

FAULTS = (
    "--bad-checksum",
    "0.02",
    "--bad-field",
    "0.01",
    "--truncate",
    "0.01",
    "--garbage",
    "0.02",
    "--drop",
    "0.01",
    "--sensor-fault",
    "0.01",
)


def runs_of_missing(expected_seqs: list[int], all_seqs: list[int]) -> list[int]:
    """Lengths of the runs of samples that never arrived between two that did: the gaps
    the daemon can see (before the first sample it has nothing to count from)."""
    got = set(expected_seqs)
    runs, current, started = [], 0, False
    for s in all_seqs:
        if s in got:
            if current and started:
                runs.append(current)
            current, started = 0, True
        else:
            current += 1
    return runs


def health(client: InfluxV1, device: str) -> dict[str, Any]:
    res = client.query(
        f"SELECT * FROM pvlog_health WHERE device = '{device}' ORDER BY time DESC LIMIT 1"
    )
    series = res["results"][0]["series"][0]
    return dict(zip(series["columns"], series["values"][0], strict=True))


def test_every_valid_sample_exactly_once(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    sim = SimProcess(
        short_tmp,
        "pvs0",
        *shlex.split("--rate 200 --seed 42 --profile fatigue --rbp 12 --unit PSI --drift-ppm 80"),
        *FAULTS,
    )
    # A long flush interval: at SIGTERM most samples are still only in memory.
    cfg = write_config(short_tmp, influxd_url(influx), influx.database, {"bench1": str(sim.link)})
    cfg.write_text(cfg.read_text().replace("flush_interval_ms = 100", "flush_interval_ms = 60000"))
    daemon = DaemonProcess(cfg)
    try:
        sim.wait_listening()
        time.sleep(6)
        status = sim.stop()  # the device stops first, so everything it sent was read
        time.sleep(0.5)
        assert daemon.stop() == 0, daemon.log()
    finally:
        sim.kill()
        daemon.kill()
    assert status["rx_bytes"] == 0, "pvlog sent bytes to a streaming device"
    figure(f"read-only: the streaming device received {status['rx_bytes']} bytes in the run")

    truth = [t for t in sim.truth() if t["kind"] == "sample" and t["delivered"]]
    valid = [t for t in truth if t["valid"]]
    corrupt = [t for t in truth if not t["valid"]]
    assert len(valid) > 1000
    assert {t["why"] for t in corrupt} >= {"bad_checksum", "bad_field", "truncated"}

    rows = query_samples(influx, "bench1")
    assert len(rows) == len(valid), "each valid sample exactly once, nothing else"
    by_seq = {r["seq"]: r for r in rows}
    assert len(by_seq) == len(rows)
    for t in valid:
        r = by_seq[t["seq"]]
        assert r["pressure_kpa"] == t["pressure_kpa"]  # None for a sensor-fault sample
        assert r["volume_ml"] == t["volume_ml"]
        assert r["flags"] == t["flags"]
    assert any(t["pressure_kpa"] is None for t in valid)
    assert not {t["seq"] for t in corrupt} & set(by_seq)

    # Device spacing is kept, and time stays close to when the samples were taken.
    times = [by_seq[t["seq"]]["time"] for t in valid]
    assert times == sorted(times)
    # The median is the clock fit's doing; the p99 also this machine's scheduling of the
    # first samples (see test_record_lbx_pvs): bounds a loaded machine meets.
    errors_ms = [abs(by_seq[t["seq"]]["time"] - t["host_ns"]) / 1e6 for t in valid]
    p50_ms, p99_ms = quantile(errors_ms, 0.5), quantile(errors_ms, 0.99)
    figure(f"timestamp error median {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms over {len(valid)} samples")
    assert p50_ms < 5
    assert p99_ms < 50

    # Lost samples are gap events with the right counts.
    gaps = influx.query("SELECT value FROM pv_event WHERE code = 'gap'")["results"][0]
    gap_values = sorted(int(v) for _, v in gaps["series"][0]["values"])
    all_seqs = [t["seq"] for t in truth] + [
        t["seq"] for t in sim.truth() if t["kind"] == "sample" and not t["delivered"]
    ]
    assert gap_values == sorted(runs_of_missing([t["seq"] for t in valid], sorted(all_seqs)))

    # Every corrupted sentence was counted once as a drop.
    h = health(influx, "bench1")
    assert h["samples"] == len(valid)
    sentence_drops = sum(
        h[f"dropped_{k}"]
        for k in ("checksum", "no_checksum", "too_long", "truncated", "not_ascii", "bad_field")
    )
    # A truncated sentence is told by the next one's start: if the device went off right
    # after one (where the stop falls is the machine's timing), nothing ever ends it.
    last = [t for t in sim.truth() if t["delivered"]][-1]
    unended = last in corrupt and last["why"] == "truncated"
    counted = Counter(t["why"] for t in corrupt if t["why"] != "dropped").total()
    assert sentence_drops == counted - unended

    session = influx.query('SELECT "state" FROM pv_session')["results"][0]["series"][0]["values"]
    assert [s for _, s in session] == ["start", "stop"]


def influxd_url(client: InfluxV1) -> str:
    return client.url
