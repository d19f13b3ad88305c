"""Every MQTT topic pvlog uses (docs/design.md's topic contract), in one place.

Per device: ``<prefix>/<device>/samples`` (batches, ~10 Hz), ``/events``, ``/status``
(retained; the last will marks it offline). Sessions: ``<prefix>/session/set`` and
``/reply``. Scale-out: an edge publishes its outbox batches on
``<prefix>/<edge>/samples`` and hears confirmations on ``<prefix>/<edge>/ack``;
recorders share ``$share/<group>/<prefix>/+/samples``.
"""

from __future__ import annotations


def samples(prefix: str, source: str) -> str:
    """A device's live batches, or an edge's outbox batches (``source`` names either)."""
    return f"{prefix}/{source}/samples"


def events(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/events"


def status(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/status"


def ack(prefix: str, edge: str) -> str:
    return f"{prefix}/{edge}/ack"


def session_set(prefix: str) -> str:
    return f"{prefix}/session/set"


def session_reply(prefix: str) -> str:
    return f"{prefix}/session/reply"


def every_samples(prefix: str) -> str:
    return samples(prefix, "+")


def every_status(prefix: str) -> str:
    return status(prefix, "+")


def shared_samples(group: str, prefix: str) -> str:
    """The recorders' shared subscription: the broker gives each batch to one of them."""
    return f"$share/{group}/{every_samples(prefix)}"
