"""The ``pvlog`` command line.

Exit codes: 0 done, 1 what was checked, read or run failed, 2 unusable arguments,
configuration or input, 130 interrupted (Ctrl-C): ``daemon.tools.arguments.EXIT_STATUS``,
shown by ``--help`` and the manual page.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

# pvlog's own modules (pydantic, aiohttp behind them) are imported inside ``main``: a
# Ctrl-C while they load is one line too, not a traceback from the import system.

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

TOOLS = frozenset({"ports", "replay", "recording", "import", "report", "audit", "keygen", "sign",
                   "verify", "example-config", "deploy", "completion", "manpage"})  # fmt: skip
"""Verbs that print what they find: their log says warnings only, as lines of their own,
unless ``-v``; the others (a service, a simulator, a demo) log what they do, timed."""

Adder = Callable[[argparse.ArgumentParser], None]
"""What gives a verb's parser its options and its handler (``daemon.tools.arguments``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """``pvlog``; a reader that closes the pipe early (``| head``) ends it quietly, with
    the status a Unix tool killed by SIGPIPE has."""
    from daemon.tools import interrupts  # a few lines: before anything slow loads

    interrupts.install()
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C at any moment: one line, the status a shell expects
        args = sys.argv[1:] if argv is None else list(argv)
        verb = next((a for a in args if not a.startswith("-")), "")
        print(f"pvlog{' ' + verb if verb else ''}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Nothing more can be written; stdout's buffer must not fail again at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _verbs(root: argparse.ArgumentParser) -> list[tuple[str, str, Adder]]:
    """Every verb, in ``--help``'s order: its name, its line there, and what adds its
    options (each module in ``daemon.tools``; the simulators' own, below)."""
    from daemon.tools import (
        audit,
        completion,
        demo,
        importer,
        manpage,
        ports,
        recording,
        replay,
        report,
        running,
        session,
        shipped,
        signing,
        watch,
    )  # fmt: skip

    return [
        ("run", "record the configured devices", running.add_run),
        ("record", "recorder tier: take edges' batches from MQTT into InfluxDB",
         running.add_record),
        ("check-config", "validate a configuration file and exit", running.add_check_config),
        ("simulate", "serve a simulated device on a pty or TCP port", _add_simulate),
        ("session", "start or stop a named session on the daemons (over MQTT)",
         session.add_arguments),
        ("watch", "a live view of every device, from MQTT", watch.add_arguments),
        ("ports", "the machine's serial ports, with the path for a config", ports.add_arguments),
        ("replay", "serve a recording's raw bytes on a pty or TCP port", replay.add_arguments),
        ("recording", "info about recordings, their samples exported, their manifests verified",
         recording.add_arguments),
        ("import", "load recordings into InfluxDB (through the outbox)", importer.add_arguments),
        ("report", "each inflation of a session (InfluxDB or recordings), table and plot",
         report.add_arguments),
        ("audit", "the audit trail: show its entries, verify its chain", audit.add_arguments),
        ("keygen", "make an Ed25519 key (the daemon's, or a person's)", signing.add_keygen),
        ("sign", "sign a report as its reviewer or approver", signing.add_sign),
        ("verify", "check a report's signatures", signing.add_verify),
        ("example-config", "print an example configuration (bench, keller...)",
         shipped.add_example_config),
        ("deploy", "print the systemd unit or a Grafana file", shipped.add_deploy),
        ("demo", "record a simulated device into a private InfluxDB", demo.add_arguments),
        ("completion", "print a bash or zsh completion script",
         lambda p: completion.add_arguments(p, root)),
        ("manpage", "print the manual page, pvlog(1)", lambda p: manpage.add_arguments(p, root)),
    ]  # fmt: skip


def _add_simulate(p: argparse.ArgumentParser) -> None:
    """The simulators' parsers (``simulators`` must not import the daemon: they are
    given the daemon's ``-v``/``-q``, and run as the simulators say)."""
    from daemon.tools.arguments import actions, handled_by, verbosity
    from simulators import cli as simulators

    p.description = simulators.DESCRIPTION
    models = actions(p)
    models.metavar = "MODEL"
    for model in simulators.add_models(models, [verbosity()]).values():
        handled_by(model, simulators.run)


def build_parser() -> argparse.ArgumentParser:
    """The one tree of verbs, their actions and options; ``args.handler`` runs the verb."""
    from daemon.tools.arguments import EXIT_STATUS, verbosity
    from daemon.version import pvlog_version

    parser = argparse.ArgumentParser(
        prog="pvlog",
        description="Record pressure and volume from balloon-inflation devices. "
        "Records only: pvlog never controls a device.",
        epilog="exit codes: " + "; ".join(f"{c} {m}" for c, m in EXIT_STATUS),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--version", action="version", version=f"pvlog {pvlog_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, add in _verbs(parser):
        add(sub.add_parser(name, help=help_text, description=help_text, parents=[verbosity()]))
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    from daemon.config import ConfigError
    from daemon.tools import interrupts

    args, extra = build_parser().parse_known_args(argv)
    interrupts.check()  # a Ctrl-C while the verbs' modules loaded, even one Python swallowed
    if extra:  # said by the verb's parser, which names the verb (argparse: by pvlog's)
        args.verb_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    tool = args.command in TOOLS and not args.verbose
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet or tool else
        logging.INFO,
        format="%(message)s" if tool else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )  # fmt: skip
    try:
        code: int = args.handler(args)
    except ConfigError as exc:  # every verb's configuration said alike: one line, exit 2
        print(f"pvlog: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return code


if __name__ == "__main__":
    sys.exit(main())
