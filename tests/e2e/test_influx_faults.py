"""InfluxDB away for twelve seconds, and InfluxDB misbehaving (500s, hanging, answering late):
nothing lost, nothing doubled, retries paced by a capped, jittered backoff, and the
backlog drained in order and fast."""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.backoff import JITTER_SEED_ENV, backoff_s, jitter, step_s
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from daemon.influx.writer import JITTER_NAME
from tests.support.helpers import (
    DaemonProcess,
    SimProcess,
    finish,
    query_samples,
    wait_for,
    write_config,
)
from tests.support.influx_proxy import InfluxProxy, Seen
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

OUTAGE_S = 12
"""Long enough for the writer's backoff to reach its 5 s cap (its waits add up to at most
6.2 s before it does) and for the outbox to hold thousands of lines; the ten-minute outage
at 5,000 samples/s is `make bench`'s (bench_outage_memory)."""
RATE_HZ = 200
JITTER_SEED = "82"


def outbox_lines(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT coalesce(sum(lines), 0) FROM batch").fetchone()[0])


def sample_seqs(body: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^pv_sample,.*?seq=(\d+)i", body, flags=re.M)]


def writer_failures_before(seen: list[Seen], first: Seen) -> int:
    """How many retries the writer made before ``first`` (each drew a wait): a write that
    begins with a line sent before is the retry of one that failed (a loaded machine can
    make even a healthy write miss its timeout)."""
    sent: set[bytes] = set()
    retries = 0
    for write in seen:
        if write is first:
            return retries
        head = write.body.split(b"\n", 1)[0]
        retries += head in sent
        sent.update(write.body.split(b"\n"))
    raise AssertionError("not a write the proxy saw")


def test_influxdb_away_loses_nothing_and_drains_in_order(
    short_tmp: Path, figure: Callable[[str], None]
) -> None:
    port = free_port()
    server = PrivateInfluxd(short_tmp / "influxd", port=port, ports=free_port)
    server.start()
    with InfluxProxy(port) as proxy:
        sim = SimProcess(short_tmp, "pvs0", "--rate", str(RATE_HZ), "--seed", "81")
        cfg = write_config(short_tmp, proxy.url, "outage", {"bench1": str(sim.link)})
        daemon = DaemonProcess(cfg)
        try:
            sim.wait_listening()
            time.sleep(3)
            server.stop()
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            backlog = outbox_lines(short_tmp / "outbox.sqlite")
            server.start()
            up_at = time.monotonic()
            wait_for(lambda: outbox_lines(short_tmp / "outbox.sqlite") < RATE_HZ, 60, "drain")
            drained_at = time.monotonic()
            drained_s = drained_at - up_at
            finish(sim, daemon)
            client = InfluxV1(server.url, "outage")
            rows = query_samples(client, "bench1")
        finally:
            sim.kill()
            daemon.kill()
            server.cleanup()
    valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
    assert [r["seq"] for r in rows] == valid, "zero samples lost"
    assert backlog >= RATE_HZ * (OUTAGE_S - 5)
    # Oldest first: the samples reached InfluxDB in the order they were taken.
    delivered = [s for w in proxy.seen if w.status == 204 for s in sample_seqs(w.body)]
    firsts = list(dict.fromkeys(delivered))
    assert firsts == valid
    # The drain rate counts from InfluxDB's first answer after its return: the wait for
    # the writer's next retry before it (backoff capped at 5 s, jittered) is not speed.
    first_ok = min(w.at for w in proxy.seen if w.status == 204 and w.at >= up_at)
    sending_s = max(drained_at - first_ok, 0.1)  # the outbox is looked at every 0.1 s
    rate = backlog / sending_s
    figure(
        f"outage {time.monotonic() - down_at:.0f} s: backlog {backlog} lines drained "
        f"{drained_s:.2f} s after InfluxDB returned, {sending_s:.2f} s of sending = "
        f"{rate:.0f} lines/s, {rate / RATE_HZ:.0f}x the acquisition rate"
    )
    assert rate >= 10 * RATE_HZ


def test_500s_hangs_and_slow_answers_are_retried_paced_and_never_doubled(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    upstream = int(influx.url.rsplit(":", 1)[1])
    with InfluxProxy(upstream, slow_s=1.5) as proxy:
        sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "82")
        cfg = write_config(short_tmp, proxy.url, influx.database, {"bench1": str(sim.link)})
        cfg.write_text(cfg.read_text().replace("timeout_s = 5", "timeout_s = 1"))
        daemon = DaemonProcess(cfg, env={JITTER_SEED_ENV: JITTER_SEED})
        try:
            sim.wait_listening()
            time.sleep(1.5)
            phases: dict[str, float] = {}
            for mode in ("error500", "hang", "slow", "pass"):
                proxy.set_mode(mode)  # type: ignore[arg-type]
                phases[mode] = time.monotonic()
                time.sleep(5)
            finish(sim, daemon)
        finally:
            sim.kill()
            daemon.kill()
    valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]
    assert [r["seq"] for r in query_samples(influx, "bench1")] == valid
    with sqlite3.connect(short_tmp / "outbox.sqlite") as db:
        assert db.execute("SELECT count(*) FROM dead_letter").fetchone() == (0,)

    # Pacing: with the daemon's jitter seeded, the test knows every wait its writer draws.
    # A try follows a 500 only after its own wait: the waits grow with each attempt, a
    # tenth of the step at least (no tight loop), never more than the step (capped).
    errors = proxy.writes("error500")
    gaps = [b.at - a.at for a, b in itertools.pairwise(errors)]
    draws = writer_failures_before(proxy.seen, errors[0])
    rng = jitter(JITTER_NAME, JITTER_SEED)
    for _ in range(draws):
        rng.random()
    waits = [backoff_s(attempt, rng) for attempt in range(len(gaps))]
    figure(
        f"500s: {len(errors)} tries in 5 s, gaps {[round(g, 2) for g in gaps]}, "
        f"each after its drawn wait {[round(w, 2) for w in waits]}"
    )
    assert len(errors) >= 2, "retried"
    for attempt, (gap, wait) in enumerate(zip(gaps, waits, strict=True)):
        assert step_s(attempt) / 10 <= wait <= step_s(attempt)
        assert gap >= wait - 0.001, (
            f"try {attempt + 1} came {gap:.3f} s after a 500, not {wait:.3f}"
        )
    phase_s = phases["hang"] - phases["error500"]
    assert len(errors) <= 1 + sum(1 for t in itertools.accumulate(waits) if t <= phase_s)
    hangs = proxy.writes("hang")
    figure(f"hang: {len(hangs)} tries in 5 s (1 s timeout each)")
    assert 1 <= len(hangs) <= 5
    slow = proxy.writes("slow")
    figure(f"slow: {len(slow)} writes answered late (each then sent again, idempotently)")
    assert slow
    # A batch answered too late was written, and is sent again; InfluxDB keeps one point
    # per series and time, so it is never a duplicate point (the exact list above).
    late = {s for w in slow for s in sample_seqs(w.body)}
    later = {s for w in proxy.seen if w.at > slow[0].at for s in sample_seqs(w.body)}
    assert late and late <= later, "what was answered late went again"
