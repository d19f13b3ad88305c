"""A full disk under the audit trail (a real tmpfs: the kernel's own ENOSPC): entries
are held in memory, in order, said once in the log, written when space comes back; at
a stop with the disk still full each one is said in the log. None is silently lost."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from daemon.audit.recorder import AuditRecorder
from daemon.audit.trail import entries, verify
from tests.e2e.test_disk_limits import fill, tmpfs
from tests.support.helpers import wait_for

pytestmark = pytest.mark.e2e

BLOB = "x" * 6000
"""More than a page: an entry cannot slip into the last page's free end."""


def test_a_full_disk_holds_entries_and_says_so(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.audit.recorder")
    with tmpfs(short_tmp / "fs", "1m") as fs:
        path = fs / "audit.jsonl"
        rec = AuditRecorder(path)
        for n in range(2):
            rec.record("session_start", "os user a", {"n": n})
        assert rec.head() is not None and rec.trail.seq == 2
        ballast = fill(fs)
        for n in range(2, 6):
            rec.record("recording_closed", "daemon", {"n": n, "blob": BLOB})
        wait_for(lambda: rec.failing is not None, 30, "the disk's refusal")
        assert rec.held == 4 and rec.head(timeout_s=0.5) is None
        said = [r.message for r in caplog.records if "cannot write" in r.message]
        assert len(said) == 1 and "held in memory" in said[0] and "No space left" in said[0]
        time.sleep(2.5)  # a few retries, each refused: still said once
        assert len([r for r in caplog.records if "cannot write" in r.message]) == 1

        ballast.unlink()
        wait_for(lambda: rec.held == 0, 30, "the held entries written")
        assert any("written again" in r.message for r in caplog.records)
        v = verify(path)
        assert v.ok and v.entries == 6 and not v.torn
        assert [e["what"]["n"] for e in entries(path)] == list(range(6))

        fill(fs)
        rec.record("daemon_stop", "daemon", {"n": 6, "blob": BLOB})
        assert rec.close(timeout_s=1.5) == 1
        (last,) = [r.message for r in caplog.records if "the entry is here instead" in r.message]
        held = json.loads(last.split("the entry is here instead: ", 1)[1])
        assert held["kind"] == "daemon_stop" and held["what"]["n"] == 6
        assert verify(path).ok and verify(path).entries == 6
