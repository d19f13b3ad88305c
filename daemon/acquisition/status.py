"""One device's state and counters: written by its acquisition, read by everyone else.

The live stream's status message, the health lines, the manifests and the stop
line all read this one object; nothing keeps a copy of a device's state to be told
about changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from drivers.records import DeviceInfo


class RecordingHealth(Protocol):
    @property
    def failed(self) -> bool:
        """The disk failed the last write."""

    @property
    def dropped(self) -> int:
        """Messages not recorded."""

    @property
    def current_file(self) -> str | None:
        """The file being written now (its name), if any."""


@dataclass
class DeviceStatus:
    name: str
    driver: str
    port: str
    state: str = "starting"
    """``starting``, ``online``, ``stalled`` or ``offline``."""
    reason: str = ""
    """Why ``offline`` (``port_lost``) or ``stalled`` (``silent``)."""
    online: bool = False
    """The port is open (a stalled device is online and silent)."""
    stalled_since: float | None = None
    """Monotonic time the port fell silent, while it is stalled."""
    samples: int = 0
    """Decoded and handed to the sinks."""
    gaps: int = 0
    """Breaks in the device's ``seq``: samples lost on the line."""
    lost_samples: int = 0
    """What the gaps lost, by their ``seq``."""
    port_outages: int = 0
    """Times the port was lost (unplugged, closed by its peer)."""
    stalls: int = 0
    """Times the open port fell silent past ``stall_timeout_s``."""
    bytes_read: int = 0
    identity: DeviceInfo | None = None
    dropped: Mapping[str, int] = field(default_factory=dict)
    """The driver's drops by reason (its own counters, read live)."""
    recording: RecordingHealth | None = None
    degraded: str | None = None
    """Why the device is degraded (too many drops: ``DropWatch``), or None."""

    def health(self) -> dict[str, int]:
        counts = {
            "samples": self.samples,
            "gaps": self.gaps,
            "lost_samples": self.lost_samples,
            "port_outages": self.port_outages,
            "online": int(self.online),
            "stalled": int(self.stalled_since is not None),
            "stalls": self.stalls,
            "dropped": sum(v for k, v in self.dropped.items() if k != "garbage_bytes"),
            "bytes_read": self.bytes_read,
        }
        counts.update({f"dropped_{k}": v for k, v in self.dropped.items()})
        if self.recording is not None:
            counts["recording_failing"] = int(self.recording.failed)
            counts["recording_dropped"] = self.recording.dropped
        return counts

    def identity_fields(self) -> dict[str, str] | None:
        info = self.identity
        if info is None:
            return None
        return {"model": info.model, "serial": info.serial, "firmware": info.firmware, **info.extra}
