"""Damaged recordings: read past a damaged chunk, and say exactly what it held.

The files are pvlog's own (``RecordingFile``); where their chunks lie and what each
holds comes from the ``mcap`` package's reader of the whole file, not from the code
under test. Damage is written over the bytes as a bad disk or a careless copy would.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader

from daemon.recordings.reader import problem, read
from daemon.recordings.scan import Message, Scanner
from tests.integration.test_recording_cli import write_recording


def chunks(path: Path) -> list[Any]:
    """The file's chunk indexes, as mcap reads them from the whole file."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    return sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)


def counts(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in make_reader(f).iter_messages())


def chunk_messages(path: Path, index: Any) -> int:
    """How many messages ``index``'s chunk holds, from a whole copy of the file."""
    with path.open("rb") as f:
        return sum(
            1
            for _, _, m in make_reader(f).iter_messages()
            if index.message_start_time <= m.log_time <= index.message_end_time
        )


def scan(path: Path) -> tuple[int, Any]:
    scanner = Scanner(path)
    n = sum(1 for item in scanner.items() if isinstance(item, Message))
    return n, scanner.findings


def damaged(whole: Path, at: int, data: bytes, name: str = "d.mcap") -> Path:
    out = whole.with_name(name)
    raw = bytearray(whole.read_bytes())
    raw[at : at + len(data)] = data
    out.write_bytes(bytes(raw))
    return out


@pytest.fixture
def whole(tmp_path: Path) -> Path:
    path = tmp_path / "whole.mcap"
    write_recording(path, reads=200)  # 10 chunks of 20 reads: 220 messages each
    return path


def test_a_whole_file_reads_every_message_and_says_nothing(whole: Path) -> None:
    n, found = scan(whole)
    assert n == counts(whole) == found.messages
    assert not found.damaged and not found.cut_short and found.lines() == []


def test_a_chunk_damaged_inside_is_skipped_and_what_it_held_said(whole: Path) -> None:
    index = chunks(whole)[4]
    middle = index.chunk_start_offset + index.chunk_length // 2
    path = damaged(whole, middle, b"\x00" * 16)
    n, found = scan(path)
    held = chunk_messages(whole, index)
    (loss,) = found.losses
    assert loss.messages == held == 220
    assert (loss.start_ns, loss.end_ns) == (index.message_start_time, index.message_end_time)
    assert n == counts(whole) - held, "every chunk after the damage is read"
    assert f"chunk at byte {index.chunk_start_offset}" in loss.where
    assert found.damaged and found.lost == held and not found.cut_short


def test_a_chunk_whose_head_is_damaged_is_found_past_by_the_next(whole: Path) -> None:
    """Its length is garbage: the next chunk is found by its signature, and the file's
    index (its end is whole) says what lay between."""
    index = chunks(whole)[2]
    path = damaged(whole, index.chunk_start_offset, b"\xee" * 16)
    n, found = scan(path)
    held = chunk_messages(whole, index)
    assert n == counts(whole) - held
    assert found.lost == held
    assert [(x.start_ns, x.end_ns) for x in found.losses if x.messages] == [
        (index.message_start_time, index.message_end_time)
    ]


def test_with_its_end_damaged_too_the_count_comes_from_what_is_left(whole: Path) -> None:
    index = chunks(whole)[2]
    path = damaged(whole, index.chunk_start_offset, b"\xee" * 16)
    raw = path.read_bytes()
    path.write_bytes(raw[:-40] + b"\x00" * 40)  # the footer and closing magic gone
    n, found = scan(path)
    assert n == counts(whole) - chunk_messages(whole, index)
    assert found.damaged
    loss = next(x for x in found.losses if "skipped" in x.where)
    assert loss.messages is None, "no index left to count it: said so, not guessed"
    assert loss.start_ns is not None and loss.end_ns is not None and loss.start_ns < loss.end_ns


def test_the_last_chunk_damaged(whole: Path) -> None:
    index = chunks(whole)[-1]
    path = damaged(whole, index.chunk_start_offset + index.chunk_length - 20, b"\x55" * 16)
    n, found = scan(path)
    assert found.lost == chunk_messages(whole, index) and n == counts(whole) - found.lost


def test_a_damaged_end_loses_no_data_but_is_said(whole: Path) -> None:
    size = whole.stat().st_size
    path = damaged(whole, size - 16, b"\x00" * 16)
    n, found = scan(path)
    assert n == counts(whole)
    assert found.losses == [] and found.end_damaged is not None and found.damaged
    assert "no data lost" in found.lines()[0]


def test_a_file_cut_short_is_not_damaged(whole: Path) -> None:
    index = chunks(whole)[6]
    cut = whole.with_name("cut.mcap")
    cut.write_bytes(whole.read_bytes()[: index.chunk_start_offset + 100])  # mid-chunk
    n, found = scan(cut)
    assert found.cut_short and not found.damaged
    assert n == sum(chunk_messages(whole, c) for c in chunks(whole)[:6])


def test_the_magic_and_random_bytes_are_no_recording(tmp_path: Path) -> None:
    path = tmp_path / "noise.mcap"
    path.write_bytes(b"\x89MCAP0\r\n" + random.Random(3).randbytes(5000))
    assert problem(path) == "not an MCAP recording: nothing after its first bytes reads as MCAP"


def test_a_damaged_definition_is_read_again_from_the_files_index(whole: Path) -> None:
    """The channels' records at the file's start overwritten: the summary repeats them."""
    first = chunks(whole)[0].chunk_start_offset
    path = damaged(whole, first - 30, b"\xff" * 24)
    n, found = scan(path)
    assert n == counts(whole)
    assert found.damaged and found.lost == 0


@settings(max_examples=150)
@given(at=st.floats(0.0, 1.0), length=st.integers(1, 64), fill=st.integers(0, 255))
def test_any_damage_anywhere_reads_without_raising_and_counts_add_up(
    tmp_path_factory: pytest.TempPathFactory, at: float, length: int, fill: int
) -> None:
    base = tmp_path_factory.mktemp("dmg") / "whole.mcap"
    write_recording(base, reads=60)
    size = base.stat().st_size
    start = 8 + int(at * (size - 8 - length))  # the magic is what says MCAP at all
    path = damaged(base, start, bytes([fill]) * length)
    findings: list[Any] = []
    items = list(read(path, findings))
    (found,) = findings
    total = counts(base)
    read_messages = sum(1 for i in items if not isinstance(i, dict))
    assert read_messages <= total
    if found.lost is not None and not found.cut_short and found.end_damaged is None:
        assert read_messages + found.lost == total
    if read_messages < total:  # a whole file is never taken for one cut short
        assert found.damaged and not found.cut_short, "a loss is never silent"
