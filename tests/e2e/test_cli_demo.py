"""The README's first command works: `pvlog demo` records a simulated device and prints a table."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.helpers import REPO, pvlog_cmd

pytestmark = pytest.mark.e2e


def test_demo_prints_what_was_recorded() -> None:
    res = subprocess.run(
        pvlog_cmd("demo", "--seconds", "5"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("inflator1"))
    device, session, samples, peak, low, volume = row.split()
    assert (device, session) == ("inflator1", "demo")
    checked = re.search(r"the device sent (\d+) valid samples; (\d+) recorded, 0 lost", res.stdout)
    assert checked, res.stdout
    assert int(samples) == int(checked[1]) == int(checked[2])
    assert int(samples) >= 200  # 5 s at 50 Hz from the first sample read, less corrupted ones
    assert -1.0 < float(low) < float(peak) < 12.0
    assert 0 <= float(volume) < 3.0
    assert re.search(r"events: .*boot 1", res.stdout)
