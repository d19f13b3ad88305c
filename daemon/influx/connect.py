"""The InfluxDB client a configuration asks for: v1 (standard library) or v2 (aiohttp,
imported only when asked for, so a v1 daemon never loads it)."""

from __future__ import annotations

from daemon.config import InfluxConfig
from daemon.influx.client import InfluxClient
from daemon.influx.v1 import InfluxV1


def influx_client(config: InfluxConfig) -> InfluxClient:
    """The client the configuration asks for (``api``, ``ca_file``, the token's source)."""
    if config.api == "v2":
        from daemon.influx.v2 import InfluxV2  # noqa: PLC0415 - aiohttp for v2 only

        assert config.org is not None  # checked by the config
        assert config.bucket is not None
        return InfluxV2(
            config.url,
            org=config.org,
            bucket=config.bucket,
            token=config.secret_token(),
            timeout_s=config.timeout_s,
            ca_file=config.ca_file,
        )
    return InfluxV1(config.url, config.database, timeout_s=config.timeout_s, ca_file=config.ca_file)
