"""One LBX device's chunk path in one process: parse, stamp, and each sink, per sample.

The daemon's per-sample cost, without the event loop and the other processes: what each
sink adds, as a multiple of the yardstick (one ``json.dumps`` of a six-key sample dict)
measured in the same run. CPU time of the process, so the recording's writer thread
counts. Bytes are the LBX feeder's (2 kHz, 3 channels), read 32 samples at a time as the
16 ms read tick does at that rate.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

from bench.load import yardstick_us
from daemon.acquisition.device import Acquisition
from daemon.acquisition.inflation_sink import InflationSink
from daemon.acquisition.inflations import InflationDetector
from daemon.acquisition.status import DeviceStatus
from daemon.config import DeviceConfig
from daemon.influx.sink import InfluxSink
from daemon.journal.keeper import Journal
from daemon.mqtt.live import BATCH_INTERVAL_S, LiveStream
from daemon.recordings.writer import FLUSH_S, DeviceRecording
from daemon.service.auditing import DaemonAudit
from daemon.sessions.state import SessionState
from daemon.web.view import DeviceView
from simulators.lbx_stream import BLOCK, T0_US, block_frame, waveform

RATE = 2000
READ_NS = 16_000_000
SECONDS = 10
CONFIGS = (
    "parse+stamp",
    "+journal",
    "influx",
    "+inflation",
    "+live",
    "+recording",
    "+web",
    "+audit",
)


def reads() -> list[bytes]:
    """``SECONDS`` of one device's bytes, cut as 16 ms reads."""
    info, blocks = waveform()
    stream = bytearray(info)
    for n in range(SECONDS * RATE // BLOCK):
        stream += block_frame(n, T0_US + n * BLOCK * 500, 500, blocks[n % len(blocks)])
    per_read = len(stream) // (SECONDS * 1_000_000_000 // READ_NS)
    return [bytes(stream[i : i + per_read]) for i in range(0, len(stream), per_read)]


def run_once(data: list[bytes], config: str, tmp: Path) -> tuple[float, int]:
    """CPU seconds and samples for the path up to ``config``."""
    session = SessionState("bench")
    upto = CONFIGS.index(config)
    journal = None
    if upto >= 1:  # each read written to the journal before it is parsed
        (tmp / config).mkdir(parents=True)
        journal = Journal(tmp / config, "box0", {}, session=lambda: session.name)
    acq = Acquisition(DeviceConfig(name="box0", driver="lbx", port="/dev/null"), journal=journal)
    lines: list[str] = []
    live = recording = None
    if upto >= 2:
        acq.add_sink(InfluxSink("box0", session, lines.extend))
    if upto >= 3:
        detector = InflationDetector(threshold_atm=1.0, baseline_atm=0.3)
        acq.add_sink(InflationSink("box0", detector, acq.emit))
    if upto >= 4:
        live = LiveStream("mqtt://127.0.0.1:1", "pvlog", DeviceStatus("box0", "lbx", "-"), session)
        acq.add_sink(live)
    if upto >= 5:
        recording = DeviceRecording(tmp / config, "box0", session, metadata={},
                                    max_file_bytes=2**30)  # fmt: skip
        acq.add_sink(recording)
    if upto >= 6:  # the live page's picture (its readers are per page, not per sample)
        acq.add_sink(DeviceView(acq.status, session))
    audit = None
    if upto >= 7:  # the identity watch per chunk; the recording's files into the trail
        audit = DaemonAudit(tmp / config / "audit.jsonl", "bench")
        acq.add_sink(audit.identity_sink("box0", session))
        assert recording is not None
        recording._on_file = functools.partial(audit.recording_file, "box0")
    rx = 1_764_000_000_000_000_000
    batch_every = round(BATCH_INTERVAL_S * 1e9 / READ_NS)
    flush_every = round(FLUSH_S * 1e9 / READ_NS)
    start = time.process_time()
    for i, chunk in enumerate(data):
        acq._on_chunk(chunk, rx + i * READ_NS)
        if live is not None and i % batch_every == 0:
            live._batch()
            live._queue.clear()
        if recording is not None and i % flush_every == 0:
            recording.flush()
    if recording is not None:
        recording.close()
    if audit is not None:
        audit.stopped("bench", "done", {}, {})
    if journal is not None:
        journal.close(remove=True)
    return time.process_time() - start, acq.status.samples


def main() -> list[str]:
    data = reads()
    best: dict[str, float] = {}
    yard = yardstick_us()
    with tempfile.TemporaryDirectory(prefix="pvb-") as d:
        for round_ in range(5):
            for config in CONFIGS:
                cpu, n = run_once(data, config, Path(d) / str(round_))
                best[config] = min(best.get(config, 1e9), cpu / n * 1e6)
    yard = min(yard, yardstick_us())
    out = [f"chunk path, 1 x LBX @ {RATE} Hz in one process (yardstick json.dumps {yard:.2f} us):"]
    previous = 0.0
    for config in CONFIGS:
        us = best[config]
        out.append(
            f"  {config:<12} {us:6.2f} us/sample = {us / yard:4.2f}x yardstick"
            f"  (this stage {us - previous:+.2f} us)"
        )
        previous = us
    return out


if __name__ == "__main__":
    print("\n".join(main()))
