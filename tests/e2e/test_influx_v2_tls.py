"""The InfluxDB v2 write API (bucket, org, token) over HTTPS with a CA of the test's own,
against a real server of that API (VictoriaMetrics); the token read from a file named by
PVLOG_INFLUX_TOKEN_FILE, sent as the API wants it and never logged."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.helpers import (
    REPO,
    DaemonProcess,
    SimProcess,
    finish,
    pvlog_cmd,
    wait_for,
    write_config,
)
from tests.support.tls import make_ca
from tests.support.victoria import PrivateVictoria

pytestmark = pytest.mark.e2e

TOKEN = "s3cr3t-t0ken-for-the-test"


def test_v2_over_https_with_a_token_from_a_file(
    short_tmp: Path, figure: Callable[[str], None]
) -> None:
    ca = make_ca(short_tmp / "tls")
    server = PrivateVictoria(short_tmp, tls=(ca.cert, ca.key), ca=ca.ca)
    server.start()
    token_file = short_tmp / "token"
    token_file.write_text(TOKEN + "\n")
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--seed", "95")
    cfg = write_config(short_tmp, server.url, "unused", {"bench1": str(sim.link)})
    cfg.write_text(
        cfg.read_text().replace(
            "[influx]", f'[influx]\napi = "v2"\norg = "lab"\nbucket = "pvlog"\nca_file = "{ca.ca}"'
        )
    )
    env = {"PVLOG_INFLUX_TOKEN_FILE": str(token_file)}
    daemon = DaemonProcess(cfg, env=env)
    try:
        sim.wait_listening()
        time.sleep(3)
        finish(sim, daemon)
        valid = [t["seq"] for t in sim.truth() if t["kind"] == "sample" and t["valid"]]

        def landed() -> bool:  # the server makes rows searchable a moment after it took them
            got = server.export("pv_sample_seq")
            return bool(got) and len(got[0]["values"]) >= len(valid)

        wait_for(landed, 15, "the last rows to become searchable")
        series = server.export("pv_sample_seq")
    finally:
        sim.kill()
        daemon.kill()
        server.cleanup()
    (s,) = series
    assert s["metric"]["device"] == "bench1" and s["metric"]["session"] == "test"
    assert [int(v) for v in s["values"]] == valid, "every sample, once, over https"
    assert TOKEN not in daemon.log()
    figure(f"v2 over https: {len(valid)} of {len(valid)} samples, token in no log line")

    # A secret file that cannot be read is a configuration error, named, secret unshown.
    check = subprocess.run(
        pvlog_cmd("check-config", "-c", str(cfg)),
        capture_output=True, text=True, cwd=REPO, check=False,
        env={"PATH": "/usr/bin:/bin", "PVLOG_INFLUX_TOKEN_FILE": str(short_tmp / "missing")},
    )  # fmt: skip
    assert check.returncode == 2
    assert "PVLOG_INFLUX_TOKEN: cannot read the secret file" in check.stderr
    assert TOKEN not in check.stderr + check.stdout
