"""pvlog's version as installed: in logs, recordings' metadata, manifests, ``--version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def pvlog_version() -> str:
    try:
        return version("pvlog")
    except PackageNotFoundError:
        return "unknown"
