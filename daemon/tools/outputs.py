"""What a command is given, checked up front in one line: files it is asked to write
(a folder that is not there, one the user may not write in: refused before minutes of
reading, not after with a traceback), and numbers that must be positive."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def positive(text: str) -> float:
    """An argument that is a number more than 0 (argparse says which, and why not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be 1 or more")
    return value


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
