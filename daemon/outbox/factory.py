"""The one way to open the outbox: with the configured path and its quota.

The daemon's batcher and writer, the edge forwarder, the recorder tier and
``pvlog import`` each open their own connection, and every one of them enforces
``outbox.max_bytes``: no component can fill the disk past it.
"""

from __future__ import annotations

from daemon.config import OutboxConfig
from daemon.outbox.store import AsyncOutbox, Outbox


def open_outbox(config: OutboxConfig) -> Outbox:
    return Outbox(config.path, max_bytes=config.max_bytes)


def open_async_outbox(config: OutboxConfig) -> AsyncOutbox:
    """For the event loop: every call on a worker thread of its own."""
    return AsyncOutbox(open_outbox(config))
