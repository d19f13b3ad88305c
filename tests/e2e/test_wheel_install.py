"""pvlog as a bench PC installs it: the wheel built from the checkout, installed into a
fresh environment outside it (no dev tools), run from another directory: its version
says it is not a checkout, the examples and the unit come with it, the demo records,
a simulator serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import REPO

pytestmark = pytest.mark.e2e


def run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, check=False, env=env)  # fmt: skip


def test_the_wheel_installs_alone_and_runs_from_anywhere(tmp_path: Path) -> None:
    built = run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-q", "-w",
                tmp_path / "wheel", cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("pvlog-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    installed = run(venv / "bin" / "pip", "install", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    dev = run(venv / "bin" / "python", "-c", "import pytest", cwd=tmp_path)
    assert dev.returncode != 0, "no dev tools on a bench PC"

    elsewhere = tmp_path / "bench"
    elsewhere.mkdir()
    pvlog = venv / "bin" / "pvlog"
    version = run(pvlog, "--version", cwd=elsewhere)
    assert version.stdout.strip() == "pvlog 0.1.0+unknown", version
    example = run(pvlog, "example-config", "bench", cwd=elsewhere)
    assert example.returncode == 0 and "[[device]]" in example.stdout
    (elsewhere / "pvlog.toml").write_text(example.stdout)
    checked = run(pvlog, "check-config", "-c", "pvlog.toml", cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    unit = run(pvlog, "deploy", "systemd", cwd=elsewhere)
    assert "ExecStart=" in unit.stdout
    assert "uid: " in run(pvlog, "deploy", "grafana-datasource", cwd=elsewhere).stdout
    page = venv / "share" / "man" / "man1" / "pvlog.1"  # `man pvlog`
    assert page.read_text() == run(pvlog, "manpage", cwd=elsewhere).stdout

    served = subprocess.Popen([str(pvlog), "simulate", "pvs", "--duration", "1", "--no-wait"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=elsewhere)  # fmt: skip
    out, err = served.communicate(timeout=60)
    assert served.returncode == 0 and out.startswith("/dev/pts/"), err
    demo = run(pvlog, "demo", "--seconds", "3", cwd=elsewhere, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "0 lost" in demo.stdout, demo.stdout
