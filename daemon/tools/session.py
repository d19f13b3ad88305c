"""``pvlog session start|stop``: publish a session command and print the daemons' replies.

Exit codes: 0 every daemon that answered took it, 1 a daemon refused it or none
answered within ``--timeout``, 2 unusable arguments or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import uuid
from typing import Any

import aiomqtt

from daemon.audit.recorder import os_user
from daemon.config import broker_settings
from daemon.mqtt import topics
from daemon.mqtt.link import Broker
from daemon.mqtt.link import client as mqtt_client
from daemon.tools.arguments import action, actions, handled_by, positive, session_name, tag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Start or stop a named session on the daemons (over MQTT)."
    acts = actions(parser)
    start = action(acts, "start", "start a named session on every daemon listening")
    start.add_argument("--name", required=True, type=session_name, help="the session's name")
    start.add_argument(
        "--tag", action="append", type=tag, default=[], metavar="KEY=VALUE",
        help="metadata, repeatable; the tags a lot report reads (test, rbp_atm...) are checked",
    )  # fmt: skip
    stop = action(acts, "stop", "end the session (back to the configured one)")
    for p in (start, stop):
        where = p.add_mutually_exclusive_group()
        where.add_argument("-c", "--config", help="take the broker and topic prefix from this file")
        where.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
        p.add_argument("--prefix", default="pvlog", help="topic prefix (without -c)")
        p.add_argument("--timeout", type=positive, default=3.0, metavar="SECONDS",
                       help="how long to wait for replies")  # fmt: skip
        handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    broker, prefix = broker_settings(args.config, args.broker, args.prefix)  # or ConfigError
    command: dict[str, Any] = {"action": args.action, "request_id": uuid.uuid4().hex}
    if args.action == "start":
        command |= {"name": args.name, "tags": dict(args.tag)}
    try:
        replies = asyncio.run(_send(broker, prefix, command, args.timeout))
    except aiomqtt.MqttError as exc:
        print(f"pvlog session: MQTT {broker.url}: {exc}", file=sys.stderr)
        return 1
    for reply in replies:
        if reply["ok"]:
            print(f"{reply['host']}: session {reply['session']}")
        else:
            print(f"{reply['host']}: refused: {reply['error']}", file=sys.stderr)
    if not replies:
        print(f"pvlog session: no daemon answered on {topics.session_set(prefix)}", file=sys.stderr)
        return 1
    return 0 if all(r["ok"] for r in replies) else 1


async def _send(broker: Broker, prefix: str, command: dict[str, Any], wait_s: float) -> list[Any]:
    """Publish ``command``; collect the replies that carry its request_id for ``wait_s``."""
    replies: list[Any] = []
    async with mqtt_client(broker, "session-cli", timeout=wait_s) as client:
        by = {"os_user": os_user(), "host": socket.gethostname(), "client": client.identifier}
        if broker.username:
            by["mqtt_user"] = broker.username
        command = {**command, "by": by}
        await client.subscribe(topics.session_reply(prefix), qos=1)
        await client.publish(topics.session_set(prefix), json.dumps(command).encode(), qos=1)
        try:
            async with asyncio.timeout(wait_s):
                async for message in client.messages:
                    reply = json.loads(bytes(message.payload))
                    if isinstance(reply, dict) and reply.get("request_id") == command["request_id"]:
                        replies.append(reply)
        except TimeoutError:
            pass
    return replies
