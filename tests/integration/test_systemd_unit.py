"""The systemd unit as systemd reads it (``systemd-analyze verify``), and the service's
config beside it: everything pvlog writes is where the hardened unit lets it write."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.service.http_limits import MAX_CONNECTIONS

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "pvlog.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_reads_the_unit_without_a_complaint(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: Debian's systemd package has it"
    pvlog = Path(sys.executable).with_name("pvlog")
    unit = tmp_path / "pvlog.service"
    unit.write_text((DEPLOY / "pvlog.service").read_text().replace(
        "/opt/pvlog/.venv/bin/pvlog", str(pvlog)))  # fmt: skip
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"systemd warned: {done.stderr}"


def test_the_unit_is_a_notify_service_restarted_and_hardened() -> None:
    d = directives()
    for key, value in {
        "Type": "notify", "Restart": "always", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "User": "pvlog", "SupplementaryGroups": "dialout",
    }.items():  # fmt: skip
        assert d[key] == [value], key
    assert d["WatchdogSec"] and d["ExecStart"][0].endswith("pvlog run -c /etc/pvlog/pvlog.toml")
    writable = [Path(p) for p in d["ReadWritePaths"][0].split()]
    config = load_config(DEPLOY / "pvlog.toml")
    for path in (config.outbox.path, config.recording.dir):
        assert any(path.is_relative_to(w) for w in writable), f"{path} is read-only there"
    assert config.http_enabled and config.http.address[0] == "127.0.0.1"


def test_the_unit_leaves_the_ports_their_descriptors() -> None:
    """systemd's default soft limit is 1024 open files: the unit sets its own, far past
    what the listener may hold (its cap) beside the devices, files and sockets."""
    (limit,) = directives()["LimitNOFILE"]
    assert limit == "65536" and int(limit) >= 64 * MAX_CONNECTIONS
