"""Every reader of recordings, given a damaged one: it reads past the damage, says on
stderr (or in its JSON) what was lost, per file, and exits 1 unless ``--allow-damaged``.

The damage is 16 bytes overwritten in the middle of the file's fifth chunk (of ten);
what that chunk held comes from the ``mcap`` package's reader of an undamaged copy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.recordings.reader import iso
from tests.integration.test_recording_cli import T0, pvlog, write_recording
from tests.support.helpers import replayed, start_replay
from tests.unit.test_recording_damage import chunk_messages, chunks, damaged

pytestmark = pytest.mark.integration

READS = 200
"""Reads of 10 samples, 20 reads a chunk: ten chunks of 200 samples and 20 raw reads."""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Any]:
    whole = tmp_path / "whole.mcap"
    write_recording(whole, reads=READS)
    index = chunks(whole)[4]
    bad = damaged(whole, index.chunk_start_offset + index.chunk_length // 2, b"\x00" * 16)
    return whole, bad, index


def said_lost(stderr: str, path: Path, index: Any, verb: str) -> None:
    """The loss, exactly: which file, how many messages, from when to when."""
    held = 220  # 200 samples and 20 raw reads
    line = next(x for x in stderr.splitlines() if "messages lost from" in x)
    assert line.startswith(f"pvlog {verb}: {path}: damaged: chunk at byte "), stderr
    assert f"{held} messages lost from {iso(index.message_start_time)} to " in line
    assert iso(index.message_end_time) in line
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "verb",
    [["recording", "info"], ["recording", "export"], ["report"]],
    ids=["info", "export", "report"],
)
def test_a_damaged_file_is_read_past_said_and_fails_unless_allowed(
    files: tuple[Path, Path, Any], verb: list[str]
) -> None:
    whole, bad, index = files
    done = pvlog(*verb, str(bad))
    assert done.returncode == 1, done.stderr
    said_lost(done.stderr, bad, index, " ".join(verb))
    assert "exit 1 (--allow-damaged to accept it)" in done.stderr
    allowed = pvlog(*verb, str(bad), "--allow-damaged")
    assert allowed.returncode == 0, allowed.stderr
    said_lost(allowed.stderr, bad, index, " ".join(verb))
    assert "going on (--allow-damaged)" in allowed.stderr
    assert allowed.stdout == done.stdout, "the same result either way; only the exit differs"
    assert pvlog(*verb, str(whole)).stderr.count("damaged") == 0


def test_export_keeps_every_row_after_the_damage(files: tuple[Path, Path, Any]) -> None:
    whole, bad, index = files
    out = bad.with_suffix(".csv")
    done = pvlog("recording", "export", str(bad), "-o", str(out), "--allow-damaged")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    lost = chunk_messages(whole, index) - 20  # its samples; the rest were raw reads
    assert len(rows) == READS * 10 - lost == 1800
    times = [int(r["time_ns"]) for r in rows]
    assert not any(index.message_start_time <= t <= index.message_end_time for t in times)
    assert max(times) > index.message_end_time, "the chunks after the damage are there"


def test_info_and_report_say_it_in_their_json(files: tuple[Path, Path, Any]) -> None:
    _, bad, index = files
    info = json.loads(pvlog("recording", "info", str(bad), "--json").stdout)
    assert info["state"].startswith("damaged: 220 messages lost")
    assert info["damage"]["messages_lost"] == 220 and info["damage"]["messages_read"] == 1981
    doc = json.loads(pvlog("report", str(bad), "--json", "--allow-damaged").stdout)
    (lost,) = doc["damaged"]
    assert lost["file"] == str(bad) and lost["messages_lost"] == 220
    (loss,) = lost["losses"]
    assert (loss["start_ns"], loss["end_ns"]) == (index.message_start_time, index.message_end_time)


def test_replay_refuses_a_damaged_file_and_plays_past_it_when_allowed(
    files: tuple[Path, Path, Any],
) -> None:
    _, bad, index = files
    refused = start_replay(bad, "--rate", "max")
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and out == "", "nothing played"
    said_lost(err, bad, index, "replay")
    got = replayed(start_replay(bad, "--rate", "max", "--allow-damaged"))
    played = [int(x[4:]) for x in got.decode().split("\r\n") if x]
    lost = [
        r
        for r in range(READS)
        if index.message_start_time <= T0 + r * 10**8 <= index.message_end_time
    ]
    assert len(lost) == 20 and played == [r for r in range(READS) if r not in lost]


def test_import_refuses_a_damaged_file_before_writing_anything(
    files: tuple[Path, Path, Any], tmp_path: Path
) -> None:
    _, bad, index = files
    outbox = tmp_path / "outbox.db"
    cfg = tmp_path / "pvlog.toml"
    cfg.write_text(
        f'[influx]\nurl = "http://127.0.0.1:9"\ndatabase = "pvlog"\n[outbox]\npath = "{outbox}"\n'
    )
    done = pvlog("import", str(bad), "--session", "s1", "-c", str(cfg))
    assert done.returncode == 1, done.stderr
    said_lost(done.stderr, bad, index, "import")
    assert done.stderr.splitlines()[-1] == "pvlog import: nothing imported"
    assert not outbox.exists(), "not a line committed"
