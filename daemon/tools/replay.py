"""``pvlog replay``: the simulators' replay, reading recordings pvlog's way.

The replay itself (pacing, the pty or TCP port, answering a polled device's requests)
is the simulators' (``simulators.replay``), which must not import the daemon; this
gives it pvlog's reader, so a damaged chunk is skipped rather than ending the replay,
and refuses a damaged recording unless ``--allow-damaged``, having said what it lost.

A replay reaches a daemon only as bytes on a port: nothing in them says how fast they
came, and the daemon stamps them with its own clock, so at ``--rate 4`` a 20 s hold is
recorded as 5 s. The session of what is replayed says so with its ``replay_rate`` tag,
which every report reads (``daemon.acquisition.pace``). With ``--session`` the replay
starts that session itself, over MQTT as ``pvlog session start`` does (every daemon
listening on the broker takes it), and stops it once it has played; without, at a rate
other than 1, it says how to tag the session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt

from daemon.acquisition.pace import TAG
from daemon.audit.recorder import os_user
from daemon.config import broker_settings
from daemon.mqtt import topics
from daemon.mqtt.link import Broker
from daemon.mqtt.link import client as mqtt_client
from daemon.recordings.reader import metadata, problem, read
from daemon.tools import damage
from daemon.tools.arguments import handled_by, session_name
from simulators import replay

ANSWER_S = 5.0
"""How long a session command waits for a daemon's reply."""


def io_messages(path: Path) -> Iterator[tuple[str, int, bytes]]:
    for item in read(path):
        if not isinstance(item, dict) and item[0] in ("raw", "written"):
            yield item


def accept(files: list[Path], allow: bool) -> bool:
    """Whether to play ``files``: each one a recording, and none damaged (or ``allow``)."""
    for f in files:
        why = problem(f)
        if why is not None:
            print(f"pvlog replay: {f}: {why}", file=sys.stderr)
            return False
    devices = sorted({_device(f) for f in files})
    if len(devices) > 1:  # one port is one device: two interleaved would be neither
        print(f"pvlog replay: the recordings are of {len(devices)} devices "
              f"({', '.join(devices)}): a replay serves one; give one device's files",
              file=sys.stderr)  # fmt: skip
        return False
    return not damage.say("pvlog replay", damage.scan(files), allow=allow)


def _device(path: Path) -> str:
    """The device a recording is of, from its metadata (read from the file's start)."""
    return metadata(path).get("device", "?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = replay.DESCRIPTION
    replay.add_arguments(parser)
    parser.add_argument(
        "--session", type=session_name, metavar="NAME",
        help=f"start this session (tagged {TAG}=RATE) on the daemons listening on the broker "
        "before playing, and stop it after",
    )  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", help="--session: the broker and prefix from this file")
    where.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883", help="--session: mqtt://host:port"
    )
    parser.add_argument("--prefix", default="pvlog", help="--session: topic prefix (without -c)")
    handled_by(parser, run)


def run(args: argparse.Namespace) -> int:
    try:
        rate: float | None = float(args.rate)
    except ValueError:
        rate = None  # max, or what the replay refuses
    if args.session is None:
        if args.rate == "max" or (rate is not None and rate > 0 and rate != 1):
            print(f"pvlog replay: at --rate {args.rate} the times recorded are not the "
                  f"balloon's: tag the session that records it {TAG}=RATE (--session NAME "
                  f"here, pvlog session start --tag, or [session] tags), so no report takes "
                  "them as real", file=sys.stderr)  # fmt: skip
        return replay.run(args, io_messages, accept)
    if rate is None and args.rate != "max":
        print(f"pvlog replay: --session tags the session {TAG}=RATE: give --rate a number "
              "or max", file=sys.stderr)  # fmt: skip
        return 2
    broker, prefix = broker_settings(args.config, args.broker, args.prefix)  # or ConfigError
    tag = "max" if rate is None else f"{rate:g}"
    start = {"action": "start", "name": args.session, "tags": {TAG: tag}}
    started = False

    def accepted(files: list[Path], allow: bool) -> bool:
        """pvlog's checks, then the session started: only for a replay that will play."""
        nonlocal started
        started = accept(files, allow) and _command(broker, prefix, start)
        return started

    try:
        return replay.run(args, io_messages, accepted)
    finally:
        if started:
            _command(broker, prefix, {"action": "stop"})


def _command(broker: Broker, prefix: str, command: dict[str, Any]) -> bool:
    """Send a session command; whether a daemon took it (said on stderr either way:
    standard output's first line is the port)."""
    try:
        reply = asyncio.run(_ask(broker, prefix, {**command, "request_id": uuid.uuid4().hex}))
    except aiomqtt.MqttError as exc:
        print(f"pvlog replay: MQTT {broker.url}: {exc}", file=sys.stderr)
        return False
    if reply is None:
        print(f"pvlog replay: no daemon answered on {topics.session_set(prefix)}", file=sys.stderr)
        return False
    if not reply.get("ok"):
        print(f"pvlog replay: {reply.get('host')}: refused: {reply.get('error')}", file=sys.stderr)
        return False
    print(f"pvlog replay: {reply['host']}: session {reply['session']}", file=sys.stderr)
    return True


async def _ask(broker: Broker, prefix: str, command: dict[str, Any]) -> dict[str, Any] | None:
    """Publish ``command`` and wait for the first reply to it (a replay feeds one daemon)."""
    async with mqtt_client(broker, "replay", timeout=ANSWER_S) as client:
        by = {"os_user": os_user(), "host": socket.gethostname(), "client": client.identifier}
        if broker.username:
            by["mqtt_user"] = broker.username
        await client.subscribe(topics.session_reply(prefix), qos=1)
        await client.publish(topics.session_set(prefix), json.dumps({**command, "by": by}), qos=1)
        try:
            async with asyncio.timeout(ANSWER_S):
                async for message in client.messages:
                    reply = json.loads(bytes(message.payload))
                    if isinstance(reply, dict) and reply.get("request_id") == command["request_id"]:
                        return reply
        except TimeoutError:
            pass
    return None
