"""The CLI is one argparse tree: every verb and action in it is run by a handler of its
own (no placeholder parsers, no second dispatcher), and takes -v/-q."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from daemon import cli
from daemon.tools.completion import subparsers


def leaves() -> dict[str, argparse.ArgumentParser]:
    out = {}
    for verb, parser in subparsers(cli.build_parser()).items():
        acts = subparsers(parser)
        out |= {f"{verb} {a}": p for a, p in acts.items()} if acts else {verb: parser}
    return out


def test_every_verb_and_action_has_its_handler() -> None:
    found = leaves()
    assert {"run", "recording export", "simulate modbus", "session start", "audit verify"} <= set(
        found
    )
    for name, parser in found.items():
        assert callable(parser.get_default("handler")), name
        assert parser.get_default("verb_parser") is parser, name
        options = {o for a in parser._actions for o in a.option_strings}
        assert {"-v", "--verbose", "-q", "--quiet", "-h"} <= options, name


@pytest.mark.parametrize("verb", ["ports", "recording info", "report", "audit show"])
def test_a_document_is_asked_for_alike_everywhere(verb: str) -> None:
    parser = leaves()[verb]
    needs = {"ports": [], "recording info": ["x.mcap"], "report": ["x.mcap"], "audit show": ["t"]}
    assert parser.parse_args([*needs[verb], "--json"]).format == "json"
    assert parser.parse_args([*needs[verb], "--format", "json"]).format == "json"
    assert parser.parse_args(needs[verb]).format == "text"


def test_ports_prints_the_same_json_either_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["ports", "--by-id-dir", str(tmp_path), "--sys-tty", str(tmp_path)]
    outs = []
    for spelling in (["--json"], ["--format", "json"]):
        assert cli.main([*base, *spelling]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] and isinstance(outs[0], list)


def test_an_option_that_is_not_the_verbs_is_said_by_the_verb(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(["recording", "info", "x.mcap", "--nope"])
    assert ended.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "pvlog recording info: error: unrecognized arguments: --nope"
    )


@pytest.mark.parametrize("leaf", sorted(leaves()))
def test_every_verb_says_a_usage_error_in_its_own_name(
    leaf: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main([*leaf.split(), "--no-such-option"])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"pvlog {leaf}: error: ")


SECONDS = "--duration/--seconds"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "-c", "x", "--duration", "abc"], f"{SECONDS}: 'abc' is not a number of seconds"),
        (["run", "-c", "x", "--seconds", "0"], f"{SECONDS}: 0: must be more than 0 seconds"),
        (["report", "x", "--rated-burst-atm", "nan"], "--rated-burst-atm: 'nan' is not a number"),
        (["report", "x", "--rated-burst-atm", "inf"], "--rated-burst-atm: 'inf' is not a number"),
        (["report", "x", "--cycles-target", "1.5"], "--cycles-target: '1.5' is not a whole number"),
        (["report", "x", "--cycles-target", "0"], "--cycles-target: 0: must be 1 or more"),
        (["session", "stop", "--timeout", "-3"], "--timeout: -3: must be more than 0"),
    ],
)  # fmt: skip
def test_a_number_that_cannot_be_right_is_named(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(args)
    assert ended.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {said}")
