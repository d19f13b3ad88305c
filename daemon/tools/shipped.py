"""``pvlog example-config NAME`` and ``pvlog deploy WHAT``: the example configurations,
the systemd unit and the Grafana files, printed from wherever pvlog runs.

From a checkout they are the repository's ``config/`` and ``deploy/``; installed (a
wheel, pipx), the same files are in the environment's ``share/pvlog/`` (the wheel's
data files), so a bench PC needs no checkout: ``pvlog example-config bench > pvlog.toml``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.tools.arguments import handled_by

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


def add_example_config(p: argparse.ArgumentParser) -> None:
    base = root()
    names = sorted(f.stem for f in (base / "config").glob("*.toml")) if base else []
    p.description = "Print an example configuration: pvlog example-config bench > pvlog.toml"
    p.add_argument("name", choices=names or None, metavar="NAME",
                   help="one of: " + (", ".join(names) or "(none installed here)"))  # fmt: skip
    handled_by(p, example_config)


def example_config(args: argparse.Namespace) -> int:
    base = root()
    if base is None:
        print("pvlog example-config: the examples are not installed here", file=sys.stderr)
        return 1
    return _print(base / "config" / f"{args.name}.toml", "example-config")


def add_deploy(p: argparse.ArgumentParser) -> None:
    p.description = "Print the systemd unit or a Grafana file: pvlog deploy systemd > pvlog.service"
    p.add_argument(
        "what", choices=list(DEPLOY), metavar="WHAT", help="one of: " + ", ".join(DEPLOY)
    )
    handled_by(p, deploy)


def deploy(args: argparse.Namespace) -> int:
    base = root()
    if base is None:
        print("pvlog deploy: the deployment files are not installed here", file=sys.stderr)
        return 1
    return _print(base / "deploy" / DEPLOY[args.what], "deploy")
