"""Files a command is asked to write, checked up front in one line (a folder that is not
there, one the user may not write in): refused before minutes of reading, not after
with a traceback."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(path: Path | None, option: str) -> str | None:
    """Why ``path`` (given as ``option``) cannot be written, or None (also for None)."""
    if path is None:
        return None
    folder = path.parent
    if not folder.is_dir():
        return f"{option} {path}: no such folder {folder}"
    if not os.access(folder, os.W_OK):
        return f"{option} {path}: cannot write in {folder}"
    if path.is_dir():
        return f"{option} {path}: is a folder"
    return None
