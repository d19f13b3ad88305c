"""InfluxV2 against a real v2 write server (VictoriaMetrics): the token goes as the API
wants it; over HTTPS (VictoriaMetrics', and InfluxDB's own https listener for v1) a
server whose certificate the configured CA did not sign is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.influx.client import InfluxUnavailable
from daemon.influx.server import PrivateInfluxd
from daemon.influx.v1 import InfluxV1
from daemon.influx.v2 import InfluxV2
from tests.support.helpers import wait_for
from tests.support.influx_proxy import InfluxProxy
from tests.support.ports import free_port
from tests.support.tls import make_ca
from tests.support.victoria import PrivateVictoria

pytestmark = pytest.mark.integration


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[PrivateVictoria]:
    server = PrivateVictoria(tmp_path)
    server.start()
    yield server
    server.cleanup()


def test_a_write_carries_the_token_and_lands(victoria: PrivateVictoria) -> None:
    with InfluxProxy(victoria.port) as proxy:
        client = InfluxV2(proxy.url, org="lab", bucket="b1", token="tkn")
        resp = client.write(b"pv_sample,device=d1 pressure_kpa=101.325,seq=7i 1700000000000000000")
        client.close()
    assert resp.status == 204
    (seen,) = proxy.seen
    assert seen.headers["Authorization"] == "Token tkn"
    wait_for(lambda: victoria.export("pv_sample_pressure_kpa"), 30, "the row to be searchable")
    (series,) = victoria.export("pv_sample_pressure_kpa")
    assert series["metric"]["device"] == "d1"
    assert series["values"] == [101.325]
    assert series["timestamps"] == [1_700_000_000_000]


def test_https_trusts_only_the_configured_ca(tmp_path: Path) -> None:
    ca, other = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other")
    server = PrivateVictoria(tmp_path, tls=(ca.cert, ca.key), ca=ca.ca)
    server.start()
    try:
        line = b"pv_sample,device=d1 seq=1i 1700000000000000000"
        good = InfluxV2(server.url, org="lab", bucket="b", token=None, ca_file=ca.ca)
        assert good.write(line).status == 204
        wrong = InfluxV2(server.url, org="lab", bucket="b", token=None, ca_file=other.ca)
        with pytest.raises(InfluxUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            wrong.write(line)
        good.close()
        wrong.close()
    finally:
        server.cleanup()


def test_influxdb_over_https_with_its_own_ca(tmp_path: Path) -> None:
    """The v1 API over InfluxDB's own https-enabled listener, trusting only the CA given."""
    ca, other = make_ca(tmp_path / "ca"), make_ca(tmp_path / "other")
    with PrivateInfluxd(
        tmp_path / "influxd", https=(ca.cert, ca.key, ca.ca), ports=free_port
    ) as server:
        assert server.url.startswith("https://")
        client = InfluxV1(server.url, "secure", ca_file=ca.ca)
        client.ensure_database()
        assert client.write(b"pv_sample,device=d1 seq=5i 1700000000000000000").status == 204
        rows = client.query("SELECT seq FROM pv_sample")["results"][0]["series"][0]["values"]
        assert rows == [[1_700_000_000_000_000_000, 5]]
        client.close()
        stranger = InfluxV1(server.url, "secure", ca_file=other.ca)
        with pytest.raises(InfluxUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            stranger.ensure_database()
