"""pvlog(1) is made from the parser tree, kept in docs/pvlog.1 (the wheel installs it),
and reads cleanly: every command and option in it, each with what it does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from daemon import cli
from daemon.tools.manpage import page

REPO = Path(__file__).resolve().parents[2]
KEPT = REPO / "docs" / "pvlog.1"


def test_the_kept_page_is_the_trees(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["manpage"]) == 0
    made = capsys.readouterr().out
    assert made == KEPT.read_text(), "run: pvlog manpage > docs/pvlog.1"


def test_every_command_and_option_is_in_it_with_what_it_does() -> None:
    from tests.unit.test_cli_tree import leaves

    text = page(cli.build_parser())
    for name, parser in leaves().items():
        assert f'.SS "pvlog {name}"' in text, name
        for action in parser._actions:
            if action.help == "==SUPPRESS==" or {"-h", "-v", "-q"} & set(action.option_strings):
                continue
            assert action.help, f"pvlog {name}: {action.option_strings or action.dest} says nothing"
            for option in action.option_strings:
                assert option.replace("-", "\\-") in text, (name, option)
    for code in ("0", "1", "2", "130"):
        assert f".TP\n\\fB{code}\\fR" in text


def test_groff_reads_it_without_a_warning() -> None:
    groff = shutil.which("groff")
    assert groff, "groff (Debian groff-base) is installed by make test-packages"
    res = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(KEPT)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 0 and res.stderr == "", res.stderr
