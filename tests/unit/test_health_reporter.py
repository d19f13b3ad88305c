"""The health reporter: each loss said once, on every device, and the writer's health line
adding up to what was said (counters as the outbox and the batcher keep them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest

from daemon.acquisition.status import DeviceStatus
from daemon.influx.writer import InfluxWriter
from daemon.outbox import batcher as batcher_module
from daemon.outbox.store import Depth, Outbox
from daemon.service.health import HealthReporter


@dataclass
class Box:
    max_bytes: int | None = 1 << 20
    evicted_lines: int = 0
    evicted_batches: int = 0


@dataclass
class Batcher:
    dropped_lines: int = 0
    commit_failures: int = 0
    failing: bool = False


class Writer:
    def health(self) -> dict[str, int]:
        return {"lines_sent": 7}


Said = list[tuple[str, str, str, float | None]]
Setup = tuple[HealthReporter, Box, Batcher, Said]


@pytest.fixture
def setup() -> Setup:
    said: Said = []
    devices = [
        (DeviceStatus(name, "pvs", "/dev/x"), lambda c, d, v, n=name: said.append((n, c, d, v)))
        for name in ("d1", "d2")
    ]
    box, batcher = Box(), Batcher()
    reporter = HealthReporter(
        devices,
        cast(Outbox, box),
        cast(batcher_module.Batcher, batcher),
        cast(InfluxWriter, Writer()),
        True,
        "bench-pc",
    )
    return reporter, box, batcher, said


def test_evictions_and_drops_are_said_once_each_on_every_device(setup: Setup) -> None:
    reporter, box, batcher, said = setup
    reporter.report_losses()
    assert said == []
    box.evicted_lines, batcher.dropped_lines = 120, 5
    reporter.report_losses()
    assert [(n, c, v) for n, c, _, v in said] == [
        ("d1", "outbox_evicted", 120.0),
        ("d2", "outbox_evicted", 120.0),
        ("d1", "memory_dropped", 5.0),
        ("d2", "memory_dropped", 5.0),
    ]
    assert "still in the raw recordings" in said[0][2]
    said.clear()
    box.evicted_lines = 150
    reporter.report_losses()
    assert [(c, v) for _, c, _, v in said] == [("outbox_evicted", 30.0)] * 2, "what is new"


def test_a_stretch_of_commit_failures_is_said_once_not_at_every_report(setup: Setup) -> None:
    reporter, _box, batcher, said = setup
    batcher.commit_failures, batcher.failing = 3, True
    reporter.report_losses()
    batcher.commit_failures = 9  # still failing: the same stretch
    reporter.report_losses()
    batcher.commit_failures, batcher.failing = 9, False
    reporter.report_losses()
    batcher.commit_failures, batcher.failing = 10, True  # a new stretch
    reporter.report_losses()
    codes = [c for n, c, _, _ in said if n == "d1"]
    assert codes == ["outbox_unwritable", "outbox_unwritable"]


def test_the_writer_line_adds_up_to_what_was_said(setup: Setup) -> None:
    reporter, box, batcher, said = setup
    box.evicted_lines, batcher.dropped_lines = 40, 2
    depth = Depth(batches=3, lines=300, dead_letters=0, bytes=9000, disk_bytes=16384)
    lines = reporter.lines(depth, now_ns=123)
    assert [x.split(" ", 1)[0] for x in lines] == [
        "pvlog_health,device=d1,host=bench-pc",  # the host: which edge, at a recorder
        "pvlog_health,device=d2,host=bench-pc",
        "pvlog_health,component=writer,host=bench-pc",
    ]
    writer = lines[-1]
    assert "outbox_evicted_lines=40i" in writer and "memory_dropped_lines=2i" in writer
    assert "outbox_lines=300i" in writer and "lines_sent=7i" in writer
    assert writer.endswith(" 123")
    assert sum(v or 0 for n, c, _, v in said if n == "d1" and c == "outbox_evicted") == 40
    assert "outbox_lines" not in reporter.lines(None, now_ns=124)[-1], "unreadable: left out"
