"""The daemon's last log lines: where every line went, and each device's counts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from daemon.outbox.sender import Sender

log = logging.getLogger("daemon.service.daemon")


def say_stopped(writer: Sender, where: Path, in_outbox: int, uncommitted: int, lost: int) -> None:
    """The stop line: where every line went."""
    if lost:
        log.error(
            "stopped: %d lines lost: the outbox could not take them (disk full) and "
            "%s did not either (they are in the raw recordings, if on)",
            lost,
            writer.destination,
        )
    elif uncommitted:
        log.info("stopped; the %d lines the outbox could not take were sent", uncommitted)
    uncleared = writer.uncleared_batches
    if in_outbox:
        log.warning(
            "stopped with %d lines in the outbox (%s): they are sent on the next start%s",
            in_outbox,
            where,
            f" ({uncleared} batches of them were sent already: the disk was too full "
            "to clear them; sending them again is harmless)"
            if uncleared
            else "",
        )
    elif not lost:
        log.info("stopped; outbox empty (%s)", counts(writer.health()))


def say_evicted_late(late: int, max_bytes: int, recording: bool) -> None:
    """What the last commits evicted, after the last health report."""
    if late > 0:
        log.error(
            "at the stop, outbox over max_bytes (%s): the oldest %d more lines were "
            "evicted unsent%s",
            max_bytes,
            late,
            " (still in the raw recordings)" if recording else "",
        )


def counts(health: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v}" for k, v in health.items() if v or k == "samples")
