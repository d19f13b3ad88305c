"""Fixtures that start real servers: a private InfluxDB and Mosquitto on free loopback ports."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from daemon.influx.server import PrivateInfluxd, influxd_path
from daemon.influx.v1 import InfluxV1
from tests.support.mosquitto import MOSQUITTO, PrivateMosquitto
from tests.support.ports import free_port

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
"""This pytest worker's name: in every name the workers' tests share (databases)."""

settings.register_profile("pvlog", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pvlog"))
"""Property tests draw the same examples on every run (derandomize: the suite never fails
by chance) and never time an example (a deadline measures a loaded machine, not pvlog).
``HYPOTHESIS_PROFILE=explore`` draws new ones, ten times as many, to hunt for bugs."""

_db_names = itertools.count()
_figures: list[str] = []


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a measured figure: printed at the end of the run, under "figures", so
    `make test` shows what each fault test measured (not only that it passed)."""

    def say(text: str) -> None:
        _figures.append(f"{request.node.name}: {text}")

    return say


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None:  # printed even with -q: the order a failure came in, to rerun it
        terminalreporter.write_line(
            f"tests ran in random order, seed {seed}: --randomly-seed={seed} runs them in "
            "that order again (-p no:randomly: in file order)"
        )
    if _figures:
        terminalreporter.section("figures")
        for line in _figures:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateInfluxd]:
    """One InfluxDB for the session; each test writes to a database of its own."""
    if influxd_path() is None:
        pytest.fail("influxd is missing: `make test` installs Debian's influxdb package")
    server = PrivateInfluxd(tmp_path_factory.mktemp("influxd"), ports=free_port)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def influx(influxd: PrivateInfluxd, request: pytest.FixtureRequest) -> InfluxV1:
    """A client for a fresh, not yet created, database named after the test."""
    name = f"{WORKER}_t{next(_db_names)}_{request.node.name[:40]}"
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return InfluxV1(influxd.url, name)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    """A broker of the test's own (tests restart it)."""
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is missing: `make test` installs Debian's mosquitto package")
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        yield broker


FAILED_LOGS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts" / "failed"
"""Where a failed test's daemon and simulator logs and truth files are kept: a failure that
a loaded machine shows once in ten runs is read from what it left, not guessed at."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report.failed
    return report


_OUTCOME = pytest.StashKey[bool]()


@pytest.fixture
def short_tmp(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A short temporary directory: Unix socket paths are limited to 107 bytes. Its logs,
    configs and truth files are kept in ``FAILED_LOGS`` when the test fails."""
    path = Path(tempfile.mkdtemp(prefix="pvl-"))
    yield path
    if request.node.stash.get(_OUTCOME, False):
        keep = FAILED_LOGS / request.node.name[:80]
        for f in path.rglob("*"):
            if f.is_file() and f.suffix in {".log", ".toml", ".jsonl", ".json"}:
                target = keep / f.relative_to(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, target)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Fails an async test that leaves a task running behind it (a leaked reader, a watcher)."""
    yield
    await asyncio.sleep(0.05)  # let cancellations the test asked for complete
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for t in left:
        t.cancel()
    assert not left, f"tasks left running: {[t.get_name() for t in left]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.function):
            item.fixturenames.append("_no_leftover_tasks")
