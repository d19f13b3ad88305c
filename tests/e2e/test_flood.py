"""A flood loses nothing: a long LBX recording replayed as fast as the pty takes it
(`pvlog replay --rate max`) into `pvlog run` with every sink on; reading pauses while
the outbox is behind, and every sample is in InfluxDB exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.pipeline import Chunk, Samples
from daemon.recordings.encoder import RecordEncoder
from daemon.recordings.file import RecordingFile
from simulators.lbx_stream import BLOCK, blocks, waveform
from tests.support.helpers import DaemonProcess, start_replay, write_config

pytestmark = pytest.mark.e2e

BLOCKS = 15_000
"""300,000 samples: 150 s of a 2 kHz box, replayed in seconds."""


def long_recording(path: Path) -> int:
    """An LBX recording of ``BLOCKS`` blocks, read 16 blocks at a time; its sample count."""
    info, _ = waveform()
    frames = list(blocks(BLOCKS))
    encoder = RecordEncoder("box")
    f = RecordingFile(path, {"device": "box", "driver": "lbx", "session": "orig"})
    t = 1_764_000_000_000_000_000
    chunks = [Chunk(info, t, Samples(), [], [])]
    for i in range(0, BLOCKS, 16):
        t += 160_000_000
        chunks.append(Chunk(b"".join(frames[i : i + 16]), t, Samples(), [], []))
        if len(chunks) >= 100:
            f.write(encoder.encode(chunks), encoder.channels)
            chunks = []
    f.write(encoder.encode(chunks), encoder.channels)
    f.close()
    return BLOCKS * BLOCK


def test_a_replay_at_max_rate_is_recorded_whole(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    recording = short_tmp / "long.mcap"
    expected = long_recording(recording)
    link = short_tmp / "port"
    replay = start_replay(recording, "--rate", "max", "--link", str(link))
    extra = f'[recording]\ndir = "{short_tmp / "rec"}"\n[inflation]\nenabled = true\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {"box": str(link)}, extra=extra)
    text = cfg.read_text().replace('driver = "pvs"', 'driver = "lbx"')
    cfg.write_text(text.replace("batch_size = 5000", "batch_size = 1000"))
    daemon = DaemonProcess(cfg)
    try:
        started = time.monotonic()
        _, err = replay.communicate(timeout=240)
        took = time.monotonic() - started
        assert replay.returncode == 0, err
        time.sleep(1.0)
        assert daemon.stop(timeout_s=240) == 0, daemon.log()
    finally:
        replay.kill()
        daemon.kill()
    log = daemon.log()
    figure(f"{expected:,} samples replayed at --rate max in {took:.1f} s")
    assert "reading paused" in log, "the flood outran the outbox, and reading waited"
    assert "dropping" not in log
    res = influx.query("SELECT count(seq) FROM pv_sample WHERE device = 'box'")
    assert res["results"][0]["series"][0]["values"][0][1] == expected, "every sample, once"
    res = influx.query("SELECT count(value) FROM pv_event WHERE device = 'box' AND code = 'gap'")
    assert "series" not in res["results"][0], "no block went missing on the way"
