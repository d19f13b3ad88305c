"""``pvlog example-config [NAME]`` and ``pvlog deploy [WHAT]``: the example configurations,
the systemd unit and the Grafana files, printed from wherever pvlog runs.

From a checkout they are the repository's ``config/`` and ``deploy/``; installed (a
wheel, pipx), the same files are in the environment's ``share/pvlog/`` (the wheel's
data files), so a bench PC needs no checkout: ``pvlog example-config bench > pvlog.toml``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
DEPLOY = {
    "systemd": "systemd/pvlog.service",
    "systemd-config": "systemd/pvlog.toml",
    "grafana-dashboard": "grafana/dashboards/pvlog.json",
    "grafana-dashboards-provider": "grafana/provisioning/dashboards/pvlog.yaml",
    "grafana-datasource": "grafana/provisioning/datasources/pvlog.yaml",
}


def root() -> Path | None:
    """Where ``config/`` and ``deploy/`` are: the checkout's, else the install's."""
    for base in (CHECKOUT, Path(sys.prefix) / "share" / "pvlog"):
        if (base / "config").is_dir() and (base / "deploy").is_dir():
            return base
    return None


def _print(path: Path, verb: str) -> int:
    try:
        sys.stdout.write(path.read_text())
    except OSError as exc:
        print(f"pvlog {verb}: {path}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def example_config(argv: Sequence[str]) -> int:
    base = root()
    if base is None:
        print("pvlog example-config: the examples are not installed here", file=sys.stderr)
        return 1
    names = sorted(p.stem for p in (base / "config").glob("*.toml"))
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: pvlog example-config NAME > pvlog.toml\nnames: " + ", ".join(names))
        return 0
    if argv[0] not in names:
        print(f"pvlog example-config: no example {argv[0]!r}; there are: {', '.join(names)}",
              file=sys.stderr)  # fmt: skip
        return 2
    return _print(base / "config" / f"{argv[0]}.toml", "example-config")


def deploy(argv: Sequence[str]) -> int:
    base = root()
    if base is None:
        print("pvlog deploy: the deployment files are not installed here", file=sys.stderr)
        return 1
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: pvlog deploy WHAT > FILE\nwhat: " + ", ".join(DEPLOY))
        return 0
    if argv[0] not in DEPLOY:
        print(f"pvlog deploy: no {argv[0]!r}; there are: {', '.join(DEPLOY)}", file=sys.stderr)
        return 2
    return _print(base / "deploy" / DEPLOY[argv[0]], "deploy")
