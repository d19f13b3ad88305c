"""One daemon per outbox: a second lock on what a running pvlog holds is refused, naming
its pid; a lock given back, or held by a process that was killed, is taken again."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.service.instance_lock import InUse, Resource, hold, outbox

REPO = Path(__file__).resolve().parents[2]


def resources(tmp: Path) -> list[Resource]:
    return [
        Resource(f"the outbox {tmp}/o.sqlite", tmp / "o.sqlite.lock"),
        Resource(f"the thing {tmp}/t", tmp / "t" / ".pvlog.lock"),
    ]


def test_a_second_hold_is_refused_naming_the_holder_and_a_given_back_one_is_taken(
    tmp_path: Path,
) -> None:
    first = hold(resources(tmp_path), "run")
    assert (tmp_path / "t").is_dir(), "a folder not there yet is made, as the daemon would"
    assert (tmp_path / "o.sqlite.lock").read_text() == f"{os.getpid()} run\n"
    with pytest.raises(InUse) as refused:
        hold(resources(tmp_path), "run")
    assert str(refused.value) == (
        f"the outbox {tmp_path}/o.sqlite is in use by pvlog pid {os.getpid()} "
        "(another pvlog run on this config?)"
    )
    with pytest.raises(InUse, match=r"^the thing .* pid \d+ \(another pvlog run"):
        hold(resources(tmp_path)[1:], "record")
    first.close()
    with hold(resources(tmp_path), "record"):
        assert (tmp_path / "o.sqlite.lock").read_text() == f"{os.getpid()} record\n"
    hold(resources(tmp_path), "run").close()


def test_a_refusal_keeps_nothing_it_took_first(tmp_path: Path) -> None:
    second = hold(resources(tmp_path)[1:], "run")
    with pytest.raises(InUse, match="the thing"):
        hold(resources(tmp_path), "run")  # the outbox taken, then the thing refused
    second.close()
    with hold(resources(tmp_path)[:1], "run"):
        pass


def test_the_same_file_named_twice_is_locked_once(tmp_path: Path) -> None:
    one = resources(tmp_path)[0]
    with hold([one, Resource("again", Path(str(one.lock)))], "run"):
        pass


def test_a_holder_that_wrote_no_pid_yet_is_said_without_one(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "o.sqlite.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(InUse, match=r"in use by another pvlog \(on this config\?\)$"):
            hold(resources(tmp_path)[:1], "run")
    finally:
        os.close(fd)


HOLDER = """
import sys, time
from pathlib import Path
from daemon.service.instance_lock import Resource, hold
held = hold([Resource("the outbox", Path(sys.argv[1]))], "run")
print("held", flush=True)
time.sleep(300)
"""


def test_a_lock_held_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    """The kernel drops a flock when its process dies, ``kill -9`` too: no stale lock."""
    lock = tmp_path / "o.sqlite.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        with pytest.raises(InUse, match=rf"by pvlog pid {proc.pid} "):
            hold([Resource("the outbox", lock)], "run")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert lock.read_text() == f"{proc.pid} run\n", "the dead holder's pid stays: it is no lock"
    with hold([Resource("the outbox", lock)], "run"):
        assert lock.read_text() == f"{os.getpid()} run\n"


def test_a_lock_that_cannot_be_made_is_said_and_the_start_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    blocked = Resource("the outbox x", tmp_path / "file" / "o.sqlite.lock")  # not a folder
    with caplog.at_level(logging.WARNING), hold([blocked], "run"):
        pass
    assert "cannot lock the outbox x" in caplog.text


def test_the_outbox_lock_is_beside_the_outbox_it_really_is(tmp_path: Path) -> None:
    r = outbox(Config.model_validate({"outbox": {"path": "var/outbox.sqlite"}}))
    here = Path.cwd().resolve()
    assert r == Resource("the outbox var/outbox.sqlite", here / "var/outbox.sqlite.lock")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")  # another config's way to it
    linked = outbox(Config.model_validate({"outbox": {"path": str(tmp_path / "link/o.sqlite")}}))
    assert linked.lock == tmp_path.resolve() / "real/o.sqlite.lock"
