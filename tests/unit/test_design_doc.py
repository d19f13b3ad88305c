"""docs/design.md and the README against the code, where a statement is a number or a
name the code has: a page that says what the code no longer does is a bug."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.acquisition import opening, polling
from daemon.acquisition.device import STOP_CLOSE_S
from daemon.mqtt import live, topics
from daemon.outbox.batcher import MAX_MEMORY_LINES
from daemon.service import daemon as service
from daemon.web import download_limits

ROOT = Path(__file__).resolve().parents[2]
DESIGN = " ".join((ROOT / "docs" / "design.md").read_text().split())  # lines rejoined
README = " ".join((ROOT / "README.md").read_text().split())


def test_the_status_and_batch_cadence_said_is_the_codes() -> None:
    every = f"at least every {live.STATUS_HEARTBEAT_S:g} s"
    assert every in DESIGN and every in README
    assert round(1 / live.BATCH_INTERVAL_S) == 10 and "about ten a second" in DESIGN


def test_the_memory_bound_said_is_the_batchers() -> None:
    assert f"at most {MAX_MEMORY_LINES:,} lines" in DESIGN


def test_the_bound_on_a_port_call_said_is_the_openers() -> None:
    assert opening.OPEN_TIMEOUT_S == opening.CLOSE_TIMEOUT_S
    assert f"the loop waits at most {opening.OPEN_TIMEOUT_S:g} s" in DESIGN
    assert polling.SETTLE == 1 and "until a whole timeout passes with nothing" in DESIGN
    assert STOP_CLOSE_S == 1 and "(a close at the stop, 1 s)" in DESIGN
    assert (download_limits.SLOTS, download_limits.WAITING, download_limits.SEND_S) == (1, 4, 60)
    assert "made one at a time, four more wait" in DESIGN and "within 60 s" in DESIGN


def test_every_room_in_the_table_exists_and_every_room_is_in_it() -> None:
    table = (ROOT / "docs" / "design.md").read_text()
    said = set(re.findall(r"^\| `(\w+)/` \|", table, re.MULTILINE))
    rooms = {p.name for p in (ROOT / "daemon").iterdir() if (p / "__init__.py").exists()}
    assert said == rooms


def test_the_topics_named_are_the_codes() -> None:
    for made in (topics.session_set("<prefix>"), topics.session_reply("<prefix>")):
        assert f"`{made}`" in DESIGN, made


def test_adding_a_sink_is_said_as_the_daemon_does_it() -> None:
    source = Path(service.__file__).read_text()
    assert "acq.add_sink(" in source and "self.flow.add(" in source
    assert "`flow.add`" in DESIGN and "`flow.add`" in README


def test_the_units_comments_point_at_real_sections_and_reload_ends_nothing() -> None:
    unit = (ROOT / "deploy" / "systemd" / "pvlog.service").read_text()
    for section in re.findall(r'README\.md, "([^"]+)"', unit):
        assert f"**{section}.**" in README or f"## {section}" in README, section
    assert "ExecReload=" not in unit.replace("No ExecReload", "")
