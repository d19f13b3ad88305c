"""``pvlog import``: a recording's samples into InfluxDB, for benches that recorded offline.

The lines are the ones ``pvlog run`` would have written (``pv_sample``, ``pv_event``,
``pv_inflation`` from the same detector, ``pv_session`` start and stop), under the
session name given, and they go the daemon's way: committed to the configured
outbox first, then sent by the same writer. InfluxDB being away loses nothing: what
it has not taken stays in the outbox for this command's next run or the daemon's.
Importing the same file twice writes the same points again, which InfluxDB keeps once.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from daemon.acquisition.inflations import InflationDetector
from daemon.audit import tool_entry
from daemon.config import Config, InflationConfig, load_config
from daemon.influx import schema
from daemon.influx.connect import influx_client
from daemon.influx.lineprotocol import SampleLines
from daemon.influx.writer import InfluxWriter
from daemon.outbox.factory import open_outbox
from daemon.pipeline import StampedEvent
from daemon.recordings.findings import Findings
from daemon.recordings.format import time_ns_of
from daemon.recordings.reader import NOT_CHANNELS, read, recording_files, recordings_or_problem
from daemon.tools import damage
from daemon.tools.arguments import handled_by, session_name
from daemon.tools.progress import Progress


def recording_lines(
    paths: Iterable[Path],
    *,
    session: str | None,
    static_tags: dict[str, str] | None = None,
    inflation: InflationConfig | None = None,
    events: bool = True,
    progress: Progress | None = None,
    findings: list[Findings] | None = None,
) -> Iterator[str]:
    """Line protocol for the recordings' samples, events and (if asked) inflations.

    ``session=None`` keeps each file's own session name.
    """
    tags = static_tags or {}
    encoders: dict[tuple[str, str, str], SampleLines] = {}
    detectors: dict[tuple[str, str, str], tuple[InflationDetector, list[int]]] = {}
    """Per device, session and run (whose cycles count from 1, as live), with its last time."""
    for path in recording_files(paths):
        file_session = run = ""
        for item in read(path, findings):
            if isinstance(item, dict):
                file_session, run = item.get("session", ""), item.get("run", "")
                continue
            topic, _log_time, data = item
            if topic != "samples" and (topic != "events" or not events):
                continue
            msg = data
            device = msg["device"]
            name = session if session is not None else file_session
            t = time_ns_of(msg)
            if topic == "events":
                event = StampedEvent(t, msg["code"], msg["detail"], msg["value"])
                yield schema.event_line(device, name, event, run)
                continue
            enc = encoders.get((device, name, run))
            if enc is None:
                enc = encoders[device, name, run] = schema.sample_lines(device, name, tags, run)
            values = {
                k: float(v) for k, v in msg.items() if k not in NOT_CHANNELS and v is not None
            }
            yield enc.encode(values, msg["seq"], msg["flags"], t)
            if progress is not None:
                progress.add()
            if inflation is not None and inflation.enabled and "pressure_kpa" in values:
                key = (device, name, run)
                if key not in detectors:
                    detectors[key] = (InflationDetector(threshold_atm=inflation.threshold_atm,
                                      baseline_atm=inflation.baseline_atm), [t])  # fmt: skip
                det, last = detectors[key]
                last[0] = t
                done = det.add(t, values["pressure_kpa"], values.get("volume_ml"))
                if done is not None:
                    yield schema.inflation_line(device, name, done, run)
    for (device, name, run), (det, last) in detectors.items():  # as a run's stop does
        cut = det.finish(last[0])
        if cut is not None:
            yield schema.inflation_line(device, name, cut, run)


def import_recordings(
    config: Config, paths: Sequence[Path], session: str, progress: Progress
) -> tuple[int, int]:
    """Commit the lines to the outbox, then send; returns (lines committed, lines left)."""
    box = open_outbox(config.outbox)
    batch: list[str] = []
    committed = 0
    first_ns: int | None = None
    last_ns = 0

    def put() -> None:
        nonlocal committed
        if batch:
            box.put("\n".join(batch).encode(), len(batch))
            committed += len(batch)
            batch.clear()

    try:
        lines = recording_lines(
            paths,
            session=session,
            static_tags=config.session.tags,
            inflation=config.inflation,
            progress=progress,
        )
        for line in lines:
            if not line:
                continue
            batch.append(line)
            t = int(line.rsplit(" ", 1)[1])
            first_ns = t if first_ns is None else min(first_ns, t)
            last_ns = max(last_ns, t)
            if len(batch) >= config.influx.batch_size:
                put()
        if first_ns is not None:
            fields = {
                "host": socket.gethostname(),
                "source": "import",
                "imported_from": ",".join(p.name for p in paths),
                **config.session.tags,
            }
            batch.append(schema.session_line(session, {"state": "start", **fields}, first_ns))
            batch.append(schema.session_line(session, {"state": "stop", **fields}, last_ns + 1))
        put()
        progress.done()
    finally:
        box.close()
    return committed, asyncio.run(_send(config))


async def _send(config: Config) -> int:
    """Drain the outbox into InfluxDB for up to ``outbox.drain_timeout_s``; returns lines left."""
    influx = config.influx
    committed = asyncio.Event()
    writer = InfluxWriter(
        open_outbox(config.outbox),
        influx_client(influx),
        committed,
        batch_size=influx.batch_size,
    )
    stop = asyncio.Event()
    stop.set()  # send what is there, then end
    try:
        await writer.run(stop, config.outbox.drain_timeout_s)
    finally:
        writer.close()
    box = open_outbox(config.outbox)
    try:
        return box.depth().lines
    finally:
        box.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Load recordings' samples into InfluxDB under a session name, "
        "through the configured outbox (nothing is lost if InfluxDB is away)."
    )
    p.add_argument("recordings", nargs="+", type=Path, help="MCAP files or directories")
    p.add_argument("--session", required=True, type=session_name,
                   help="the session name the samples get (session start's rule)")  # fmt: skip
    p.add_argument("-c", "--config", required=True, help="InfluxDB, outbox and tags from here")
    p.add_argument("--progress", action="store_true", help="show progress even off a terminal")
    damage.add_flag(p)
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, devices=False)  # a ConfigError: pvlog says it, exit 2
    files, why = recordings_or_problem(args.recordings)
    if why is not None:
        print(f"pvlog import: {why}", file=sys.stderr)
        return 1
    if damage.say("pvlog import", damage.scan(files), allow=args.allow_damaged):
        print("pvlog import: nothing imported", file=sys.stderr)
        return 1
    progress = Progress("samples read", sys.stderr, args.progress or sys.stderr.isatty())
    committed, left = import_recordings(config, args.recordings, args.session, progress)
    what = {"session": args.session, "samples": progress.count, "lines": committed,
            "left_in_outbox": left}  # fmt: skip
    tool_entry.made("import_made", args.config, args.recordings, what)
    print(
        f"{progress.count} samples ({committed} lines) imported as session {args.session} "
        f"through {config.outbox.path}"
    )
    if left:
        print(
            f"pvlog import: {left} lines are still in the outbox (InfluxDB at "
            f"{config.influx.url} did not take them): the next pvlog run or import sends them",
            file=sys.stderr,
        )
        return 1
    return 0
