"""pvlog's build as installed: in logs, recordings' metadata, manifests, reports, ``--version``.

A record must name the software that made it, and ``0.1.0`` named every commit alike.
So the version carries the commit as a PEP 440 local part, ``0.1.0+g1b21bab4c2d1``, read
from the checkout pvlog runs from (``.git``'s files read directly: no ``git`` process,
none installed on a bench PC); outside a checkout (a wheel) it is ``0.1.0+unknown``,
said as such rather than looking exact.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SHA = re.compile(r"[0-9a-f]{40}")


def commit(root: Path = ROOT) -> str | None:
    """The commit checked out at ``root`` (None: not a checkout, or one pvlog cannot read)."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if _SHA.fullmatch(head):
            return head  # detached
        ref = head.removeprefix("ref: ").strip()
        common = git / "commondir"
        base = (git / common.read_text().strip()).resolve() if common.is_file() else git
        for where in (git, base):
            if (where / ref).is_file():
                sha = (where / ref).read_text().strip()
                return sha if _SHA.fullmatch(sha) else None
        for line in (base / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.fullmatch(sha):
                return sha
    except (OSError, IndexError, ValueError):
        return None
    return None


def build(root: Path = ROOT) -> str:
    try:
        base = version("pvlog")
    except PackageNotFoundError:
        base = "0+unknown"
    if "+" in base:
        return base
    sha = commit(root)
    return f"{base}+g{sha[:12]}" if sha else f"{base}+unknown"


@functools.cache
def pvlog_version() -> str:
    return build()
