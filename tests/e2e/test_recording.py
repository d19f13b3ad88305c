"""Raw recordings on real ptys: the MCAP file holds every byte the device delivered, with
decoded samples (ROS 2 CDR, checked with mcap's own ROS 2 decoder) and events (JSON
with a JSON Schema), forms Foxglove opens; a `kill -9` leaves a
file that reads back up to its last chunk (at most about a second lost)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from mcap.exceptions import EndOfFile
from mcap.reader import make_reader
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory

from daemon.influx.v1 import InfluxV1
from daemon.recordings.manifest import sha256_file
from tests.support.helpers import REPO, DaemonProcess, SimProcess, finish, pvlog_cmd, write_config

pytestmark = pytest.mark.e2e

FAULTS = ("--bad-checksum", "0.02", "--garbage", "0.02", "--drop", "0.01")


def recording_config(tmp: Path, influx: InfluxV1, link: Path) -> Path:
    extra = f'[recording]\ndir = "{tmp / "rec"}"\n'
    return write_config(tmp, influx.url, influx.database, {"bench1": str(link)}, extra=extra)


def verify_cli(directory: Path) -> tuple[int, str]:
    """``pvlog recording verify``: its exit code, and its summary up to the file counts
    (whole: 0, or 3 when nothing is signed); everything it said for a failure."""
    out = subprocess.run(
        pvlog_cmd("recording", "verify", str(directory)),
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1]
    return out.returncode, last.split(" (")[0] if out.returncode in (0, 3) else out.stdout


def delivered_bytes(sim: SimProcess) -> bytes:
    return b"".join(t["raw"].encode("latin-1") for t in sim.truth() if t["delivered"])


def messages(path: Path, *, truncated: bool = False) -> list[tuple[str, int, bytes]]:
    """(channel topic, log time, data) of every message that reads back.

    A cut-short file has no summary and no end: it is read as a stream (mcap's
    sorting readers want the whole file first) until the data runs out.
    """
    out: list[tuple[str, int, bytes]] = []
    if not truncated:
        with path.open("rb") as f:
            for _schema, channel, message in make_reader(f).iter_messages():
                out.append((channel.topic, message.log_time, message.data))
        return out
    topics: dict[int, str] = {}
    with path.open("rb") as f, contextlib.suppress(EndOfFile):
        for record in StreamReader(f, emit_chunks=False).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                out.append((topics[record.channel_id], record.log_time, record.data))
    return out


def test_every_delivered_byte_and_every_sample_is_recorded(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "11", *FAULTS)
    daemon = DaemonProcess(recording_config(short_tmp, influx, sim.link))
    try:
        sim.wait_listening()
        time.sleep(3)
        finish(sim, daemon)
    finally:
        sim.kill()
        daemon.kill()
    (path,) = (short_tmp / "rec" / "test").glob("*.mcap")
    assert path.name.endswith("_test_bench1_0001.mcap")
    assert path.name[:16].replace("T", "").replace("Z", "").isdigit()  # 20261123T201553Z...

    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    schemas = {s.name: s for s in summary.schemas.values()}
    assert {n: s.encoding for n, s in schemas.items()} == {
        "pvlog/msg/Sample": "ros2msg",
        "pvlog.Event": "jsonschema",
    }
    event_schema: dict[str, Any] = json.loads(schemas["pvlog.Event"].data)
    assert event_schema["properties"]["timestamp"]["properties"].keys() == {"sec", "nsec"}
    encodings = {c.topic: c.message_encoding for c in summary.channels.values()}
    assert encodings == {"raw": "", "samples": "cdr", "events": "json"}

    msgs = messages(path)
    raw = b"".join(data for topic, _, data in msgs if topic == "raw")
    assert raw == delivered_bytes(sim), "every byte, in order, nothing else"
    raw_times = [t for topic, t, _ in msgs if topic == "raw"]
    assert raw_times == sorted(raw_times)

    # The samples as Foxglove reads them: ROS 2 CDR, decoded by mcap's own ROS 2 decoder.
    valid = {t["seq"]: t for t in sim.truth() if t["kind"] == "sample" and t["valid"]}
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[Ros2DecoderFactory()])
        decoded = list(reader.iter_decoded_messages(topics=["samples"]))
    assert len(decoded) == len(valid) > 400
    for _, _, message, s in decoded:
        assert s.pressure_kpa == valid[s.seq]["pressure_kpa"]
        assert s.volume_ml == valid[s.seq]["volume_ml"]
        assert s.timestamp.sec * 10**9 + s.timestamp.nanosec == message.log_time
    assert {s.seq for *_, s in decoded} == valid.keys()
    events = [json.loads(d) for topic, _, d in msgs if topic == "events"]
    assert "gap" in {e["code"] for e in events}

    # The QA manifest: what was recorded, where, by what, and each file's hash.
    (mpath,) = (short_tmp / "rec" / "test").glob("*.manifest.json")
    doc = json.loads(mpath.read_text())
    assert doc["complete"] is True and doc["session"] == "test"
    assert doc["files"] == [
        {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
    ]
    (device,) = doc["devices"]
    assert device["name"] == "bench1" and device["identity"]["model"] == "BIX-30"
    assert doc["config"]["device"][0]["port"] == str(sim.link)
    (stretch,) = doc["stretches"]
    assert stretch["start_ns"] < stretch["stop_ns"]
    # Whole, but nothing signed (no audit.signing_key): said, with its own exit code.
    assert verify_cli(short_tmp / "rec") == (3, "UNSIGNED: 1 manifest(s), 1 file(s)")

    # One byte changed in the recording is caught, and named.
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, out = verify_cli(short_tmp / "rec")
    assert code == 1 and f"{path.name}: SHA-256 differs: altered" in out


def test_a_killed_daemon_leaves_a_file_readable_to_its_last_chunk(
    short_tmp: Path, influx: InfluxV1
) -> None:
    sim = SimProcess(short_tmp, "pvs0", "--rate", "200", "--seed", "12")
    daemon = DaemonProcess(recording_config(short_tmp, influx, sim.link))
    try:
        sim.wait_listening()
        time.sleep(4)
        killed_at = time.time_ns()
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(10)
        sim.stop()
    finally:
        sim.kill()
        daemon.kill()
    (path,) = (short_tmp / "rec" / "test").glob("*.mcap")
    msgs = messages(path, truncated=True)
    raw = b"".join(data for topic, _, data in msgs if topic == "raw")
    delivered = delivered_bytes(sim)
    assert delivered.startswith(raw), "what reads back is exactly what was delivered"
    # At most about a second (the flush interval) plus scheduling slack is lost.
    last = max(t for topic, t, _ in msgs if topic == "raw")
    assert killed_at - last < 2_000_000_000
    assert len(raw) > 0.5 * len(delivered)
    # The manifest written at the start still says so: QA sees the run was cut short.
    code, out = verify_cli(short_tmp / "rec")
    assert code == 1 and "was never closed" in out and f"{path.name}: in no manifest" in out
