"""The build in every record: the version names the commit, or says it cannot."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

from daemon.version import ROOT, build, commit

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_this_checkout_names_its_commit() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert commit() == head
    assert build() == f"{version('pvlog')}+g{head[:12]}"


def test_outside_a_checkout_the_build_is_said_unknown(tmp_path: Path) -> None:
    assert commit(tmp_path) is None
    assert build(tmp_path).endswith("+unknown")


def test_a_branch_in_packed_refs_a_detached_head_and_a_worktree(tmp_path: Path) -> None:
    git = tmp_path / "repo" / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs\n{SHA} refs/heads/main\n")
    assert commit(tmp_path / "repo") == SHA
    (git / "HEAD").write_text(SHA + "\n")
    assert commit(tmp_path / "repo") == SHA
    wt = tmp_path / "wt"
    (git / "worktrees" / "wt").mkdir(parents=True)
    (git / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "worktrees" / "wt" / "commondir").write_text("../..\n")
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {git / 'worktrees' / 'wt'}\n")
    assert commit(wt) == SHA
    (git / "HEAD").write_text("ref: refs/heads/gone\n")
    assert commit(tmp_path / "repo") is None, "a branch it cannot find: unknown, not a guess"
