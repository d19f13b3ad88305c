"""``pvlog manpage``: the manual page, pvlog(1), made from the CLI's own parser tree, so
it says what ``-h`` says and cannot drift from it.

The repository keeps it as ``docs/pvlog.1`` (a test holds it to this output) and the
wheel installs it as ``share/man/man1/pvlog.1``: ``man pvlog`` on a bench PC, and
``man -l docs/pvlog.1`` in a checkout. No date or build in it: it changes when the CLI
does, not with every commit.
"""

from __future__ import annotations

import argparse
import sys

from daemon.tools.arguments import EXIT_STATUS, handled_by
from daemon.tools.completion import subparsers


def roff(text: str) -> str:
    """``text`` as roff prints it: backslashes and hyphens kept, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.splitlines())  # fmt: skip


EVERY = {"-h", "-v", "-q"}
"""Every command's: said once, not under each."""


def _options(parser: argparse.ArgumentParser, *, every: bool = False) -> list[str]:
    out = []
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if not every and EVERY & set(action.option_strings):
            continue
        invocation = formatter._format_action_invocation(action)
        said = formatter._expand_help(action) if action.help else ""
        out += [".TP", f"\\fB{roff(invocation)}\\fR", roff(said)]
    return out


def _command(name: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f'.SS "pvlog {name}"']
    if parser.description:
        lines.append(roff(parser.description))
    return lines + _options(parser)


def page(root: argparse.ArgumentParser) -> str:
    lines = [
        '.TH PVLOG 1 "" "pvlog" "User Commands"',
        ".SH NAME",
        "pvlog \\- record pressure and volume from balloon\\-inflation devices",
        ".SH SYNOPSIS",
        ".B pvlog",
        "[\\fB\\-v\\fR|\\fB\\-q\\fR] \\fICOMMAND\\fR [\\fIACTION\\fR] [\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        roff(root.description or ""),
        ".PP",
        "Every command takes \\fB\\-h\\fR, \\fB\\-v\\fR (debug logging) and \\fB\\-q\\fR "
        "(warnings and errors only).",
        ".SH OPTIONS",
        *_options(root, every=True),
        ".SH COMMANDS",
    ]
    for verb, parser in subparsers(root).items():
        acts = subparsers(parser)
        lines += _command(verb, parser)
        for name, act in acts.items():
            lines += _command(f"{verb} {name}", act)
    lines.append('.SH "EXIT STATUS"')
    for code, meaning in EXIT_STATUS:
        lines += [".TP", f"\\fB{code}\\fR", roff(meaning)]
    lines += [
        '.SH "SEE ALSO"',
        "The README (a bench's setup, each command at work), docs/design.md (the design),",
        "docs/configuration.md (every key), docs/schema.md (what InfluxDB holds).",
    ]
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser, root: argparse.ArgumentParser) -> None:
    p.description = "Print the manual page, pvlog(1): pvlog manpage | man -l -"
    p.set_defaults(root=root)
    handled_by(p, run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(page(args.root))
    return 0
