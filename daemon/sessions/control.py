"""Sessions started and stopped over MQTT: ``<prefix>/session/set`` -> ``<prefix>/session/reply``.

A session names a stretch of recording (a compliance run on lot L7 by Alice): it
is a ``pv_session`` start point with its metadata, and every sample after it
carries its name as the ``session`` tag. This controls the logger, never a
device. Commands are JSON::

    {"action": "start", "name": "run42", "tags": {"operator": "alice", "lot": "L7"},
     "request_id": "anything"}
    {"action": "stop", "request_id": "anything"}

A command may say who sent it, ``"by": {"mqtt_user": ..., "os_user": ..., "host": ...,
"client": ...}`` (``pvlog session`` does): the audit trail keeps it as who asked. MQTT
does not pass the sender's login on to subscribers, so it is what the sender said; a
broker that authenticates and lets only named users publish ``session/set`` makes it
true (docs/records.md).

Every command gets one reply per daemon on the reply topic:
``{"ok": true, "host": ..., "session": ..., "request_id": ...}`` or
``{"ok": false, "error": "...", "request_id": ...}``. The tags a lot report reads are
held to its rules (``tag_rules``) here, so a daemon refuses ``test=brust`` rather than
record a specimen no report would count. ``parse_command`` is pure, so what is
accepted is unit-tested without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from daemon.backoff import supervise
from daemon.mqtt import topics
from daemon.mqtt.link import MQTT_FAILURES, Broker, as_broker
from daemon.mqtt.link import client as mqtt_client
from daemon.sessions.tag_rules import TAG_KEY, TagError, check_tag
from drivers.errors import PvlogError

log = logging.getLogger(__name__)

SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
RESERVED_TAGS = frozenset(
    {"device", "session", "code", "state", "host", "pvlog_version", "devices"}
)
"""Tags pvlog sets itself, and fields every pv_session point already has."""
MAX_TAG_VALUE = 200


class Command(NamedTuple):
    action: str
    """``start`` or ``stop``."""
    name: str
    tags: dict[str, str]
    request_id: str | None
    by: str = ""
    """Who asked, for the audit trail (``mqtt user alice, os user bob on bench-pc``)."""


BY_KEYS = ("mqtt_user", "os_user", "host", "client")


class CommandError(PvlogError, ValueError):
    """A command that cannot be carried out; the message goes back on the reply topic."""


def parse_command(payload: bytes) -> Command:
    """Validate one ``session/set`` payload; raises ``CommandError`` saying what is wrong."""
    try:
        msg = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise CommandError("a command is a JSON object")
    request_id = msg.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        raise CommandError("request_id must be a string")
    unknown = set(msg) - {"action", "name", "tags", "request_id", "by"}
    if unknown:
        raise CommandError(f"unknown key(s): {', '.join(sorted(unknown))}")
    by = _by(msg.get("by", {}))
    action = msg.get("action")
    if action == "stop":
        if "name" in msg or "tags" in msg:
            raise CommandError("stop takes no name or tags")
        return Command("stop", "", {}, request_id, by)
    if action != "start":
        raise CommandError(f"action must be 'start' or 'stop', not {action!r}")
    name = msg.get("name")
    if not isinstance(name, str) or not SESSION_NAME.match(name):
        raise CommandError("name: 1-100 characters of A-Z a-z 0-9 _ . : -, starting alnum")
    tags = msg.get("tags", {})
    if not isinstance(tags, dict):
        raise CommandError("tags must be an object of strings")
    for key, value in tags.items():
        if not TAG_KEY.match(key):
            raise CommandError(f"tag {key!r}: a letter, then letters, digits or _")
        if key in RESERVED_TAGS:
            raise CommandError(f"tag {key!r} is set by pvlog itself")
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TAG_VALUE:
            raise CommandError(f"tag {key!r}: a non-empty string of at most 200 characters")
        try:
            check_tag(key, value)  # what a lot report reads (test=burst, rbp_atm=14...)
        except TagError as exc:
            raise CommandError(str(exc)) from None
    return Command("start", name, dict(tags), request_id, by)


def _by(by: object) -> str:
    """``by`` as one line: ``mqtt user alice, os user bob on bench-pc, client pvlog-...``."""
    if not isinstance(by, dict) or set(by) - set(BY_KEYS):
        raise CommandError(f"by: an object of {', '.join(BY_KEYS)}")
    for key, value in by.items():
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TAG_VALUE:
            raise CommandError(f"by.{key}: a non-empty string of at most 200 characters")
    parts = []
    if "mqtt_user" in by:
        parts.append(f"mqtt user {by['mqtt_user']}")
    if "os_user" in by:
        parts.append(f"os user {by['os_user']}" + (f" on {by['host']}" if "host" in by else ""))
    elif "host" in by:
        parts.append(f"on {by['host']}")
    if "client" in by:
        parts.append(f"client {by['client']}")
    return ", ".join(parts)


Handler = Callable[[Command], str]
"""Carries out a command; returns the session now in force (raises CommandError if not)."""


class SessionControl:
    """Listens on ``<prefix>/session/set`` and replies, reconnecting for as long as it runs."""

    def __init__(
        self, broker: Broker | str, topic_prefix: str, host_name: str, handler: Handler
    ) -> None:
        self.broker = as_broker(broker)
        self.set_topic = topics.session_set(topic_prefix)
        self.reply_topic = topics.session_reply(topic_prefix)
        self.host_name = host_name
        self.handler = handler
        self.subscribed = asyncio.Event()
        self.commands = 0
        self.rejected = 0

    async def run(self, stop: asyncio.Event) -> None:
        await supervise(
            self._listen,
            stop,
            what="session control",
            log=log,
            retry_on=MQTT_FAILURES,
            failure="MQTT connection lost",
            on_lost=self.subscribed.clear,
        )

    async def _listen(self) -> None:
        async with mqtt_client(self.broker, "sessions", timeout=5.0) as client:
            await client.subscribe(self.set_topic, qos=1)
            self.subscribed.set()
            log.info("session control: listening on %s", self.set_topic)
            async for message in client.messages:
                reply = self.handle(bytes(message.payload))
                await client.publish(self.reply_topic, json.dumps(reply).encode(), qos=1)

    def handle(self, payload: bytes) -> dict[str, Any]:
        """One command in, one reply out; never raises."""
        self.commands += 1
        request_id = _request_id(payload)
        try:
            command = parse_command(payload)
            request_id = command.request_id
            said = command.by or "who not said"
            session = self.handler(command._replace(by=f"mqtt ({said})"))
        except CommandError as exc:
            self.rejected += 1
            log.warning("session command rejected: %s", exc)
            return {
                "ok": False,
                "host": self.host_name,
                "error": str(exc),
                "request_id": request_id,
            }
        return {"ok": True, "host": self.host_name, "session": session, "request_id": request_id}


def _request_id(payload: bytes) -> str | None:
    """The command's ``request_id`` if it has a usable one, so even a rejection is matched."""
    with contextlib.suppress(ValueError):
        msg = json.loads(payload)
        if isinstance(msg, dict) and isinstance(msg.get("request_id"), str):
            return str(msg["request_id"])
    return None
