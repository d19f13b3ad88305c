"""The audit entries of commands run by hand (``pvlog import``, ``report``, ``recording
export``, ``sign``): appended to the same trail as the daemon's, under its lock.

The trail is the configuration's (``-c``), else the one beside what the command read
(``audit.jsonl`` in a recordings directory, or up to three levels above a file in it).
A command with neither has no trail to write to: it says so with ``-v`` only, as it is
no error to report on a copy of the files somewhere else.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from daemon.audit.recorder import os_user
from daemon.audit.trail import NAME, AuditTrail
from daemon.config import ConfigError, load_config
from daemon.recordings.manifest import SUFFIX, sha256_file

log = logging.getLogger(__name__)

LEVELS_UP = 3


def who() -> str:
    return f"cli (os user {os_user()} on {socket.gethostname()})"


def find_trail(config_path: str | None, near: Iterable[Path] = ()) -> Path | None:
    if config_path is not None:
        try:
            return load_config(config_path, devices=False).audit_path
        except ConfigError:
            return None  # the command itself says what is wrong with it
    for path in near:
        here = path.resolve()
        for directory in [here, *here.parents][: LEVELS_UP + 1]:
            if any(directory.glob(f"*{SUFFIX}")):
                continue  # a session's folder: the daemon's trail is never kept there
            if (directory / NAME).is_file():
                return directory / NAME
    return None


def made(
    kind: str,
    config_path: str | None,
    inputs: Iterable[Path],
    what: Mapping[str, Any],
    outputs: Iterable[Path | None] = (),
    *,
    read: Iterable[Path | str] = (),
) -> bool:
    """A command's entry in the trail it finds: what it was given and each file it
    read, and each file it wrote, all as absolute paths with their SHA-256 (what a
    later check of a file compares against). ``read``: the files it used (the
    recordings of a session, say); else each input that is a file."""
    inputs = list(inputs)
    doc = {**what, "inputs": [str(p.resolve()) for p in inputs],
           "inputs_sha256": _hashed(read or [p for p in inputs if p.is_file()]),
           "outputs": _hashed(p for p in outputs if p is not None)}  # fmt: skip
    return note(find_trail(config_path, inputs), kind, doc)


def _hashed(paths: Iterable[Path | str]) -> dict[str, str]:
    out = {}
    for path in map(Path, paths):
        if path.is_file():
            out[str(path.resolve())] = sha256_file(path)
    return out


def note(trail: Path | None, kind: str, what: Mapping[str, Any]) -> bool:
    """Append one entry; False (said in the log) when there is no trail or it cannot
    be written: the command's own work is done either way."""
    if trail is None:
        log.info("no audit trail beside what was read: %s not recorded", kind)
        return False
    try:
        AuditTrail(trail).append(kind, who(), what)
    except OSError as exc:
        log.error("audit trail %s: cannot write the %s entry: %s", trail, kind, exc)  # noqa: TRY400
        return False
    return True
