"""``pvlog run``, ``pvlog record`` and ``pvlog check-config``: the verbs that read a
configuration and run the service on it (or only check it, and with ``--probe`` reach
each port, InfluxDB and the broker, writing nothing to a device).

A configuration that will not do is one line naming the key, exit 2 (``daemon.cli``
says every ``ConfigError`` the same way), and so is one whose outbox another pvlog
holds (``daemon.service.instance_lock``); a run that cannot start (a disk, the outbox)
is one line, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable

from daemon.config import Config, ConfigError, load_config
from daemon.service import instance_lock
from daemon.tools import interrupts
from daemon.tools.arguments import handled_by, seconds


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="TOML configuration file")


def add_run(p: argparse.ArgumentParser) -> None:
    p.description = "Record the configured devices until stopped (SIGTERM, Ctrl-C)."
    _config(p)
    p.add_argument("--duration", "--seconds", type=seconds, metavar="SECONDS",
                   help="stop by itself after this long")  # fmt: skip
    p.add_argument(
        "--until-ports-end",
        action="store_true",
        help="stop by itself once every device's port has ended (a replay that has played)",
    )
    handled_by(p, run)


def add_record(p: argparse.ArgumentParser) -> None:
    p.description = "The recorder tier: take edges' batches from MQTT into InfluxDB."
    _config(p)
    handled_by(p, record)


def add_check_config(p: argparse.ArgumentParser) -> None:
    p.description = "Validate a configuration file and exit (exit 2 names the key)."
    _config(p)
    p.add_argument(
        "--probe",
        action="store_true",
        help="also read each device's port (writing nothing) and reach InfluxDB and the broker",
    )
    p.add_argument("--probe-seconds", type=seconds, default=3.0, metavar="SECONDS", help="per port")
    handled_by(p, check_config)


def _checked(path: str) -> Config:
    config = load_config(path)
    config.influx.secret_token()  # named secret files must be readable now
    config.mqtt.broker()
    config.audit.key()  # and the signing key, private
    return config


def check_config(args: argparse.Namespace) -> int:
    config = _checked(args.config)
    print(f"{args.config}: OK, {len(config.device)} device(s)")
    return _probe(config, args.probe_seconds) if args.probe else 0


def run(args: argparse.Namespace) -> int:
    config = _checked(args.config)
    held = _held(config, "run")  # before the daemon opens anything
    if held is None:
        return 2
    with held:
        from daemon.service.daemon import Daemon

        interrupts.check()  # loading the service took a while: a Ctrl-C meanwhile ends it here
        return _serve(lambda: Daemon(config, args.config).run(
            duration_s=args.duration, until_ports_end=args.until_ports_end))  # fmt: skip


def record(args: argparse.Namespace) -> int:
    config = load_config(args.config, devices=False)
    if "mqtt" not in config.model_fields_set:
        raise ConfigError(f"{args.config}: mqtt: the recorder needs an [mqtt] table")
    held = _held(config, "record")  # its outbox too: two writers would drain one table
    if held is None:
        return 2
    with held:
        from daemon.mqtt.recorder import Recorder

        interrupts.check()
        return _serve(lambda: Recorder(config).run())


def _held(config: Config, verb: str) -> instance_lock.Held | None:
    """The config's outbox locked for this process; None, said in one line, if another
    pvlog holds it."""
    try:
        return instance_lock.hold([instance_lock.outbox(config)], verb)
    except instance_lock.InUse as exc:
        print(f"pvlog: cannot run: {exc}", file=sys.stderr)
        return None


def _serve(service: Callable[[], Awaitable[bool]]) -> int:
    """Run ``service`` to its end: 0 if it ended well, 1 if not or it could not start."""

    async def main() -> bool:
        return await service()

    try:
        return 0 if asyncio.run(main()) else 1
    except (OSError, sqlite3.Error) as exc:
        print(f"pvlog: cannot run: {exc}", file=sys.stderr)
        return 1


def _probe(config: Config, seconds: float) -> int:
    """Each finding on a line; exit 1 if anything is wrong."""
    from daemon.tools.probe import probe

    findings = asyncio.run(probe(config, seconds))
    for f in findings:
        print(f.line())
    bad = sum(not f.ok for f in findings)
    print(f"probe: {len(findings) - bad} OK, {bad} failed")
    return 1 if bad else 0
