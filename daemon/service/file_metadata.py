"""What a device's files say of it: its recordings' metadata, and its journal's head (a
recording recovered from the journal says the same)."""

from __future__ import annotations

from collections.abc import Mapping

from daemon.config import DeviceConfig
from daemon.version import pvlog_version


def device_metadata(
    device: DeviceConfig, host: str, run: str, tags: Mapping[str, str]
) -> dict[str, str]:
    return {
        "driver": device.driver,
        "port": device.port,
        "baudrate": str(device.baudrate),
        "host": host,
        "pvlog_version": pvlog_version(),
        "run": run,
        # The session's tags (lot, operator...): the config's; one started over MQTT
        # adds its own per file (``DeviceRecording``).
        **{f"tag.{k}": v for k, v in tags.items()},
    }
