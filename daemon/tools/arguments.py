"""What every verb's parser shares: ``-v``/``-q`` after the verb as before it, the exit
codes, the types for seconds, positive numbers, session names and tags (refused by
argparse in one line naming the option), and how a verb's parser names the function
that runs it.

Each verb module has ``add_arguments(parser)`` (several verbs: one such function per
verb) that ends with ``handled_by(parser, run)``; ``daemon.cli`` builds the one tree
from them and calls ``args.handler(args)``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from daemon.sessions.control import SESSION_NAME
from daemon.sessions.tag_rules import TagError, check_tag

if TYPE_CHECKING:
    Actions = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]

EXIT_STATUS = (
    ("0", "done"),
    ("1", "what was checked, read or run failed (a file to read that is not there, or "
          "not whole, too)"),
    ("2", "unusable arguments, configuration or input (a value that cannot be right, a "
          "file that cannot be written), said in one line naming it"),
    ("130", "interrupted (Ctrl-C), said in one line"),
)  # fmt: skip
"""Every verb's exit codes: ``pvlog --help``'s epilog and the manual page say them."""


def verbosity() -> argparse.ArgumentParser:
    """A parent parser with ``-v``/``-q``; SUPPRESS, so a verb given none keeps what came
    before it (``pvlog -v report ...``)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    parent.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="warnings and errors only",
    )  # fmt: skip
    return parent


def handled_by(parser: argparse.ArgumentParser, handler: Handler) -> None:
    """``parser``'s verb (or action) is run by ``handler``; its usage errors are said by
    ``parser`` (``args.verb_parser.error``), with its own name."""
    parser.set_defaults(handler=handler, verb_parser=parser)


def actions(parser: argparse.ArgumentParser) -> Actions:
    """A verb's actions (``recording info``, ``audit show``...)."""
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def action(acts: Actions, name: str, help_text: str) -> argparse.ArgumentParser:
    """One action, taking ``-v``/``-q`` as its verb does."""
    return acts.add_parser(name, help=help_text, description=help_text, parents=[verbosity()])


def output_format(parser: argparse.ArgumentParser, json_help: str) -> None:
    """``--format text|json``, as ``recording export --format`` names its output, and
    ``--json``, short for ``--format json`` (both spellings work on every verb that
    prints a document)."""
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help=f"json: {json_help}")  # fmt: skip
    parser.add_argument("--json", dest="format", action="store_const", const="json",
                        help="short for --format json")  # fmt: skip


N = TypeVar("N", int, float)


def _number(text: str, kind: Callable[[str], N], noun: str, least: N, must: str) -> N:
    """``text`` as a ``kind`` of at least ``least`` (more than, for a float), or argparse's
    one-line refusal saying which and why."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):  # nor nan, nor inf
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}")
    if value < least or (kind is float and not value > least):
        raise argparse.ArgumentTypeError(f"{text}: {must}")
    return value


def seconds(text: str) -> float:
    return _number(text, float, "a number of seconds", 0.0, "must be more than 0 seconds")


def positive(text: str) -> float:
    """An argument that is a number more than 0."""
    return _number(text, float, "a number", 0.0, "must be more than 0")


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number", 1, "must be 1 or more")


def session_name(text: str) -> str:
    """A session's name as the daemons take it (``pvlog session start``, ``import``)."""
    if not SESSION_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: 1-100 characters of A-Z a-z 0-9 _ . : -, starting with a letter or digit"
        )
    return text


def tag(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` held to the rules a lot report reads tags by, so ``pvlog session
    start --tag test=brust`` is refused here, before any daemon records it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE")
    try:
        check_tag(key, value)
    except TagError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return key, value
