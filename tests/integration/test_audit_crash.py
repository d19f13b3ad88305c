"""The audit trail under a crash: two processes appending as fast as they can to one
trail (the daemon and a ``pvlog sign`` beside it), each killed with SIGKILL mid-stream.
The chain verifies to the last whole entry, no two entries share a seq, and the next
writer goes on from there."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.audit.trail import AuditTrail, entries, verify
from tests.support.helpers import REPO, wait_for

pytestmark = pytest.mark.integration

WRITER = """
import sys, time
from pathlib import Path
from daemon.audit.trail import AuditTrail
trail = AuditTrail(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    trail.append("recording_closed", sys.argv[2], {"n": n, "pad": "x" * 3000})
"""


def both_wrote(path: Path) -> bool:
    """Each writer has entries in the trail, and there are a few hundred."""
    if not path.exists() or path.stat().st_size < 600_000:
        return False
    data = path.read_bytes()
    return b'"who":"daemon"' in data and b'"who":"signer"' in data


def test_kill_9_during_heavy_appending_leaves_a_chain_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who], cwd=REPO)
        for who in ("daemon", "signer")
    ]
    try:
        wait_for(lambda: both_wrote(path), 60, "entries from both, some 600 KB")
        writers[0].send_signal(signal.SIGKILL)
        time.sleep(0.2)  # the other goes on alone, then dies as suddenly
        writers[1].send_signal(signal.SIGKILL)
    finally:
        for w in writers:
            w.kill()
            w.wait()
    verdict = verify(path)
    assert verdict.ok, verdict.problem
    whole = entries(path)
    assert verdict.entries == len(whole) > 150
    assert [e["seq"] for e in whole] == list(range(1, len(whole) + 1))
    assert {e["who"] for e in whole} == {"daemon", "signer"}, "both wrote, interleaved"
    for who in ("daemon", "signer"):  # each writer's own entries, none lost in between
        ns = [e["what"]["n"] for e in whole if e["who"] == who and e["kind"] != "trail_torn"]
        assert ns == list(range(1, len(ns) + 1))
    AuditTrail(path).append("daemon_start", "daemon", {})
    again = verify(path)
    assert again.ok and not again.torn
    assert again.entries == verdict.entries + 1 + verdict.torn, "a torn line: an entry of its own"
