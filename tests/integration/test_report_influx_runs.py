"""A session name reused across daemon runs (a fixed ``[session] name``) read back from a
real InfluxDB: each run's samples carry that run's own tags, as its recordings do, so a
lot judged from InfluxDB counts the same specimens as one judged from the files."""

from __future__ import annotations

from daemon.influx.v1 import InfluxV1
from daemon.tools.report import from_influx

T0 = 1_790_000_000 * 10**9


def test_each_run_of_a_reused_session_name_keeps_its_own_tags(influx: InfluxV1) -> None:
    influx.ensure_database()
    lines = []
    for k, (run, tags) in enumerate([
        ("r1", 'lot="L7",specimen="s30",test="burst",exclude="seated wrongly"'),
        ("r2", 'lot="L7",specimen="s31",test="burst"'),
    ]):  # fmt: skip
        t = T0 + k * 60 * 10**9
        lines.append(f'pv_session,session=bench4,run={run} state="start",host="h",{tags} {t}')
        lines += [
            f"pv_sample,device=bench,session=bench4,run={run} pressure_kpa={p},volume_ml=1.0 "
            f"{t + (i + 1) * 10**7}"
            for i, p in enumerate((10.0, 200.0, 400.0, 10.0))
        ]
    assert influx.write("\n".join(lines).encode()).status == 204
    traces = from_influx(influx, "bench4")
    assert [(t.run, t.tags.get("specimen"), t.tags.get("exclude")) for t in traces] == [
        ("r1", "s30", "seated wrongly"),
        ("r2", "s31", None),
    ]
