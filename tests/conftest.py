"""Fixtures that start real servers: a private InfluxDB on a free loopback port."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.influx import InfluxV1
from daemon.influxd import PrivateInfluxd, influxd_path

_db_names = itertools.count()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateInfluxd]:
    """One InfluxDB for the session; each test writes to a database of its own."""
    if influxd_path() is None:
        pytest.fail("influxd is missing: `make test` installs Debian's influxdb package")
    server = PrivateInfluxd(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def influx(influxd: PrivateInfluxd, request: pytest.FixtureRequest) -> InfluxV1:
    """A client for a fresh, not yet created, database named after the test."""
    name = f"t{next(_db_names)}_{request.node.name[:40]}".replace("[", "_").replace("]", "_")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return InfluxV1(influxd.url, name)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory: Unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pvl-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
