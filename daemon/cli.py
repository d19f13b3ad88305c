"""The ``pvlog`` command line.

Exit codes: 0 done, 1 what was checked or run failed, 2 unusable arguments,
configuration or input, 130 interrupted (Ctrl-C): ``EXIT_CODES``, shown by ``--help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.config import Config

# pvlog's own modules (pydantic, aiohttp behind them) are imported inside ``main``: a
# Ctrl-C while they load is one line too, not a traceback from the import system.

log = logging.getLogger("pvlog")

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130
EXIT_CODES = (
    "exit codes: 0 done; 1 what was checked or run failed; 2 unusable arguments, "
    "configuration or input; 130 interrupted (Ctrl-C)"
)


VERBOSE = ("-v", "--verbose")
QUIET = ("-q", "--quiet")
OWN_PARSERS = ("replay", "recording", "import", "report", "ports", "audit", "keygen", "sign",
               "verify", "example-config", "deploy", "completion")  # fmt: skip
"""Verbs with a parser of their own (``pvlog report -h`` shows their options)."""


def main(argv: Sequence[str] | None = None) -> int:
    """``pvlog``; a reader that closes the pipe early (``| head``) ends it quietly, with
    the status a Unix tool killed by SIGPIPE has."""
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


def build_parser() -> argparse.ArgumentParser:
    """The one tree of verbs and their options (the verbs with parsers of their own are
    listed, and take the rest of the line themselves)."""
    from daemon.tools import session as session_cli
    from daemon.version import pvlog_version

    parser = argparse.ArgumentParser(
        prog="pvlog",
        description="Record pressure and volume from balloon-inflation devices. "
        "Records only: pvlog never controls a device.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--version", action="version", version=f"pvlog {pvlog_version()}")
    # -v after the verb too; SUPPRESS: a verb without it keeps what came before it.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    verbose.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="warnings and errors only",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="record the configured devices", parents=[verbose])
    run.add_argument("-c", "--config", required=True, help="TOML configuration file")
    run.add_argument(
        "--duration", type=_seconds, metavar="SECONDS", help="stop by itself after this long"
    )
    run.add_argument(
        "--until-ports-end",
        action="store_true",
        help="stop by itself once every device's port has ended (a replay that has played)",
    )

    record = sub.add_parser(
        "record",
        help="recorder tier: take edges' batches from MQTT into InfluxDB",
        parents=[verbose],
    )
    record.add_argument("-c", "--config", required=True, help="TOML configuration file")

    check = sub.add_parser(
        "check-config", help="validate a configuration file and exit", parents=[verbose]
    )
    check.add_argument("-c", "--config", required=True, help="TOML configuration file")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also read each device's port (writing nothing) and reach InfluxDB and the broker",
    )
    check.add_argument(
        "--probe-seconds", type=_seconds, default=3.0, metavar="SECONDS", help="per port"
    )

    simulate = sub.add_parser(
        "simulate", help="serve a simulated device on a pty or TCP port", parents=[verbose]
    )
    simulate.add_argument(
        "model",
        choices=["pvs", "lbx", "gauge", "micrometer", "modbus"],
        help="device to simulate",
    )
    simulate.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        help="see `pvlog simulate pvs -h` (or lbx, gauge, micrometer, modbus)",
    )

    session = sub.add_parser(
        "session",
        help="start or stop a named session on the daemons (over MQTT)",
        parents=[verbose],
    )
    session_cli.add_arguments(session)

    watch = sub.add_parser(
        "watch", help="a live view of every device, from MQTT", parents=[verbose]
    )
    where = watch.add_mutually_exclusive_group()
    where.add_argument("-c", "--config", help="take the broker and topic prefix from this file")
    where.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port")
    watch.add_argument("--prefix", default="pvlog", help="topic prefix (without -c)")
    watch.add_argument(
        "--seconds", "--duration", type=_seconds, default=None,
        help="print the table once after this long",
    )  # fmt: skip
    watch.add_argument("--local", action="store_true", help="times in local time (default UTC)")

    sub.add_parser("ports", help="the machine's serial ports, with the path for a config")
    sub.add_parser("replay", help="serve a recording's raw bytes on a pty or TCP port")
    sub.add_parser("recording", help="info about recordings, or their samples exported")
    sub.add_parser("import", help="load recordings into InfluxDB (through the outbox)")
    sub.add_parser(
        "report", help="each inflation of a session (InfluxDB or recordings), table and plot"
    )
    sub.add_parser("audit", help="the audit trail: show its entries, verify its chain")
    sub.add_parser("keygen", help="make an Ed25519 key (the daemon's, or a person's)")
    sub.add_parser("sign", help="sign a report as its reviewer or approver")
    sub.add_parser("verify", help="check a report's signatures")
    sub.add_parser("example-config", help="print an example configuration (bench, keller...)")
    sub.add_parser("deploy", help="print the systemd unit or a Grafana file")

    demo = sub.add_parser(
        "demo", help="record a simulated device into a private InfluxDB", parents=[verbose]
    )
    demo.add_argument("--seconds", "--duration", type=_seconds, default=20.0,
                      help="how long to record")  # fmt: skip

    sub.add_parser("completion", help="print a bash or zsh completion script")
    return parser


def verb_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each verb's parser, by name (shell completion reads their options)."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _main(argv: Sequence[str] | None = None) -> int:
    from daemon.config import ConfigError, load_config
    from daemon.tools import session as session_cli

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    # `pvlog -v report ...` and `pvlog report ... -v`: the verb's own parser takes the
    # rest, and none of them has a -v of its own.
    first = [a for a in argv if a not in VERBOSE + QUIET][:1]
    if first and first[0] in OWN_PARSERS and any(a in VERBOSE + QUIET for a in argv):
        level = logging.DEBUG if any(a in VERBOSE for a in argv) else logging.WARNING
        argv = [a for a in argv if a not in VERBOSE + QUIET]
        logging.basicConfig(level=level, stream=sys.stderr)
    if argv[:1] == ["replay"]:  # its own parser: `pvlog replay -h` shows its options
        from daemon.tools.replay import main as replay_main

        return replay_main(argv[1:])
    if argv[:1] == ["recording"]:
        from daemon.tools.recording import main as recording_main

        return recording_main(argv[1:])
    if argv[:1] == ["import"]:
        from daemon.tools.importer import main as import_main

        return import_main(argv[1:])
    if argv[:1] == ["ports"]:
        from daemon.tools.ports import main as ports_main

        return ports_main(argv[1:])
    if argv[:1] == ["report"]:
        from daemon.tools.report import main as report_main

        return report_main(argv[1:])
    if argv[:1] == ["audit"]:
        from daemon.tools.audit import main as audit_main

        return audit_main(argv[1:])
    if argv[:1] == ["completion"]:
        from daemon.tools.completion import main as completion_main

        return completion_main(argv[1:], verb_parsers())
    if argv[:1] and argv[0] in ("example-config", "deploy"):
        from daemon.tools import shipped

        return (shipped.example_config if argv[0] == "example-config" else shipped.deploy)(argv[1:])
    if argv[:1] and argv[0] in ("keygen", "sign", "verify"):
        from daemon.tools import signing

        verb = {"keygen": signing.keygen, "sign": signing.sign, "verify": signing.verify}
        return verb[argv[0]](argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command in ("run", "check-config"):
        try:
            config = load_config(args.config)
            config.influx.secret_token()  # named secret files must be readable now
            config.mqtt.broker()
            config.audit.key()  # and the signing key, private
        except ConfigError as exc:
            print(f"pvlog: config error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if args.command == "check-config":
            print(f"{args.config}: OK, {len(config.device)} device(s)")
            return _probe(config, args.probe_seconds) if args.probe else 0
        from daemon.service.daemon import Daemon

        async def _run() -> bool:
            return await Daemon(config, args.config).run(
                duration_s=args.duration, until_ports_end=args.until_ports_end
            )

        try:
            ok = asyncio.run(_run())
        except (OSError, sqlite3.Error) as exc:
            print(f"pvlog: cannot run: {exc}", file=sys.stderr)
            return 1
        return 0 if ok else 1
    if args.command == "simulate":
        from simulators.cli import main as simulate_main

        return simulate_main([args.model, *args.args])
    if args.command == "record":
        return _record(args.config)
    if args.command == "watch":
        return _watch(args)
    if args.command == "session":
        return session_cli.run(args)
    if args.command == "demo":
        from daemon.tools.demo import run_demo

        return run_demo(seconds=args.seconds)
    parser.error(f"unknown command {args.command}")
    return EXIT_CONFIG


def _probe(config: Config, seconds: float) -> int:
    """Each finding on a line; exit 1 if anything is wrong."""
    from daemon.tools.probe import probe

    findings = asyncio.run(probe(config, seconds))
    for f in findings:
        print(f.line())
    bad = sum(not f.ok for f in findings)
    print(f"probe: {len(findings) - bad} OK, {bad} failed")
    return 1 if bad else 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _record(path: str) -> int:
    from daemon.config import ConfigError, load_config

    try:
        config = load_config(path, devices=False)
    except ConfigError as exc:
        print(f"pvlog: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if "mqtt" not in config.model_fields_set:
        print(
            f"pvlog: config error: {path}: mqtt: the recorder needs an [mqtt] table",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    from daemon.mqtt.recorder import Recorder

    async def _run() -> bool:
        return await Recorder(config).run()

    try:
        return 0 if asyncio.run(_run()) else 1
    except (OSError, sqlite3.Error) as exc:
        print(f"pvlog: cannot run: {exc}", file=sys.stderr)
        return 1


def _watch(args: argparse.Namespace) -> int:
    from rich.console import Console

    from daemon.config import ConfigError, broker_settings
    from daemon.tools.watch import watch

    try:
        broker, prefix = broker_settings(args.config, args.broker, args.prefix)
    except ConfigError as exc:
        print(f"pvlog: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(broker, prefix, args.seconds, Console(), local=args.local))
    return 0


if __name__ == "__main__":
    sys.exit(main())
