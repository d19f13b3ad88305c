"""A Ctrl-C that lands where Python swallows it (a ``__del__``, an import lock's
callback) still ends pvlog as interrupted; a SIGINT the parent ignores stays ignored."""

from __future__ import annotations

import subprocess
import sys

from tests.support.helpers import REPO

SWALLOWED = """
import os, signal, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a shell starts it
from daemon.tools import interrupts
interrupts.install()

class Gone:
    def __del__(self):  # where Python prints "Exception ignored in" and carries on
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)

Gone()
print("carried on", flush=True)
try:
    interrupts.check()
except KeyboardInterrupt:
    print("seen", flush=True)
"""

IGNORED = """
import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's
from daemon.tools import interrupts
interrupts.install()
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.2)
interrupts.check()
print("still ignored", flush=True)
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, timeout=30, check=False)  # fmt: skip


def test_a_swallowed_ctrl_c_is_still_seen() -> None:
    res = run(SWALLOWED)
    assert "Exception ignored in" in res.stderr, "the interrupt did land in __del__"
    assert res.stdout.split() == ["carried", "on", "seen"]


def test_an_ignored_sigint_stays_ignored() -> None:
    res = run(IGNORED)
    assert (res.returncode, res.stdout) == (0, "still ignored\n"), res.stderr
