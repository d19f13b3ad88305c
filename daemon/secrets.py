"""Secrets (the InfluxDB token, the MQTT password): from the environment or a file, never
from the config file, and never kept where a repr or a log line would show them."""

from __future__ import annotations

import os
from pathlib import Path

from drivers.errors import PvlogError


class ConfigError(PvlogError):
    """A configuration that cannot be used; the message is one line naming the key."""


def read_secret(env: str, file: Path | None) -> str | None:
    """A secret from the environment (``env``), or from a file: the one ``<env>_FILE``
    names, else ``file``. Files are how container and systemd secrets arrive."""
    value = os.environ.get(env)
    if value:
        return value
    path = os.environ.get(f"{env}_FILE") or file
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{env}: cannot read the secret file {path}: {exc.strerror}"
            ) from None
    return None
