"""``pvlog simulate pvs|lbx|gauge|micrometer``: serve a simulated device on a pty (default)
or TCP port; with ``--micrometer LINK``, a bench: the device and a laser micrometer across
the same balloon, on two ports, one profile."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
from collections.abc import Sequence
from typing import IO

from drivers.units import KPA_PER_UNIT
from simulators.arterial import ArterialSettings
from simulators.balloon import Balloon
from simulators.faults import Faults
from simulators.gauge_device import GaugeDevice, GaugeSettings
from simulators.lbx_device import LbxDevice, LbxSettings
from simulators.link import Link, PtyLink, TcpLink
from simulators.micrometer_device import MicrometerDevice, MicrometerSettings
from simulators.modbus_device import ModbusDevice, ModbusSettings
from simulators.profiles import PROFILES, ProfilePlayer, segments
from simulators.pvs_device import PvsDevice, PvsSettings
from simulators.runner import TICK_S, SimDevice, Simulator


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= p <= 1:
        raise argparse.ArgumentTypeError("a probability is between 0 and 1")
    return p


FAULT_HELP = {
    "bad-checksum": "per sentence/frame: a wrong checksum (pvs) or CRC (lbx, modbus)",
    "bad-field": "pvs, per sentence: a field that does not parse, checksum right; modbus, "
    "per request: an exception answer",
    "truncate": "per sentence/frame: cut short",
    "garbage": "per sentence/frame: line noise before it",
    "drop": "per sentence/frame: not sent at all (a gap); modbus: no answer",
    "sync": "lbx, per frame: a sample whose raw bytes are SYNC1 SYNC2",
}
RATES = {
    "pvs": (10, 500, 50.0),
    "lbx": (100, 2000, 1000.0),
    "gauge": (1, 100, 10.0),
    "micrometer": (1, 200, 50.0),
    "modbus": (1, 1000, 100.0),
}


MODELS = ("pvs", "lbx", "gauge", "micrometer", "modbus")
FOR = {
    "unit": ("pvs",), "sensor-fault": ("pvs",), "micrometer": ("pvs",),
    "micrometer-truth": ("pvs",), "micrometer-rate": ("pvs",),
    "drift-ppm": ("pvs", "lbx"), "t0": ("pvs", "lbx"),
    "block": ("lbx",), "heart-rate": ("lbx",), "resonance": ("lbx",), "sync": ("lbx",),
    "poll": ("gauge",), "checksum": ("gauge",), "unit-id": ("modbus",),
    "bad-checksum": ("pvs", "lbx", "gauge", "modbus"), "bad-field": ("pvs", "modbus"),
    "truncate": ("pvs", "lbx"), "garbage": ("pvs", "lbx"), "drop": ("pvs", "lbx", "modbus"),
}  # fmt: skip
"""Options only some models take; every other option is every model's."""


DESCRIPTION = (
    "Serve a simulated device. Prints the port to open (a pty path such as /dev/pts/7, "
    "or socket://host:port) on the first line of standard output."
)
HELP = {
    "pvs": "a bench inflation device (PVS ASCII, its own clock)",
    "lbx": "a cath-lab interface box (LBX binary frames, its own clock)",
    "gauge": "a digital pressure gauge (ASCII lines, streaming or polled)",
    "micrometer": "a laser micrometer's diameter lines",
    "modbus": "a Modbus RTU pressure transmitter (Keller-style registers), polled",
}


def add_models(
    models: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> dict[str, argparse.ArgumentParser]:
    """One parser per model, each with only the options that model takes
    (``pvlog simulate gauge -h`` shows the gauge's; another model's option is refused).
    Every other option reads as its default, so ``run`` sees one shape whatever the model."""
    everything = argparse.ArgumentParser(add_help=False)
    add_arguments(everything, None)
    defaults = vars(everything.parse_args([]))
    out = {}
    for model in MODELS:
        p = models.add_parser(
            model, help=HELP[model], description=DESCRIPTION, parents=list(parents)
        )
        add_arguments(p, model)
        p.set_defaults(**defaults, model=model)
        out[model] = p
    return out


def add_arguments(p: argparse.ArgumentParser, model: str | None) -> None:
    """The options ``model`` takes (all of them without one)."""

    def takes(option: str) -> bool:
        return model is None or model in FOR.get(option, MODELS)

    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve on TCP instead of a pty")
    p.add_argument(
        "--link", metavar="PATH", help="keep a symlink to the pty here (stable across replug)"
    )
    p.add_argument("--profile", choices=PROFILES, default="clinical",
                   help="what the balloon goes through (default clinical)")  # fmt: skip
    low, high, default = RATES.get(model or "", (None, None, None))
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"samples per second: {low:g}-{high:g} ({default:g})" if model else
        "samples per second (per channel)",
    )  # fmt: skip
    if takes("unit-id"):
        p.add_argument("--unit-id", type=int, default=1, help="the slave's unit id (1-247)")
    if takes("poll"):
        p.add_argument("--poll", action="store_true", help="answer *R\\r, else say nothing")
    if takes("checksum"):
        p.add_argument("--checksum", action="store_true", help="$P,value,bar*HH lines")
    if takes("unit"):
        p.add_argument("--unit", choices=sorted(KPA_PER_UNIT), default=None,
                       help="the unit it sends (default ATM)")  # fmt: skip
    if takes("block"):
        p.add_argument("--block", type=int, default=0, help="samples per frame (0: ~100/s)")
    if takes("heart-rate"):
        p.add_argument("--heart-rate", type=float, default=72.0, help="beats per minute")
    if takes("resonance"):
        p.add_argument("--resonance", action="store_true", help="underdamped catheter line")
    p.add_argument("--seed", type=int, default=None, help="makes the run deterministic")
    if takes("drift-ppm"):
        p.add_argument("--drift-ppm", type=float, default=0.0, help="device clock error")
    if takes("t0"):
        p.add_argument("--t0", type=int, default=None, help="device clock at power-up, us")
    p.add_argument("--noise", type=float, default=0.003, help="pressure noise, atm (1 sigma)")
    p.add_argument("--balloon", default="8x40", help="diameter x length, mm")
    p.add_argument("--rbp", type=_positive, default=14.0, help="rated burst pressure, atm")
    p.add_argument("--cycles", type=int, default=10, help="fatigue cycles")
    p.add_argument("--hold", type=_positive, default=None, help="hold time at each plateau, s")
    p.add_argument(
        "--ramp", type=_positive, default=None, help="ramp rate, atm/s (default: the profile's)"
    )
    p.add_argument(
        "--duration", "--seconds", type=_positive, default=None, metavar="SECONDS",
        help="stop after this long",
    )  # fmt: skip
    p.add_argument("--truth", metavar="FILE", help="write every emitted sentence as JSON lines")
    if takes("micrometer"):
        p.add_argument(
            "--micrometer",
            metavar="PATH",
            help="a bench: also a laser micrometer across the same balloon, its pty linked here",
        )
        p.add_argument("--micrometer-truth", metavar="FILE", help="the micrometer's truth file")
        p.add_argument("--micrometer-rate", type=float, default=50.0, help="its readings a second")
    p.add_argument("--control", metavar="PATH", help="Unix socket for run-time commands")
    p.add_argument(
        "--no-wait", action="store_true", help="start sending at once, not when a reader opens"
    )
    for name, what in FAULT_HELP.items():
        if takes(name):
            p.add_argument(f"--{name}", type=_probability, default=0.0, metavar="P", help=what)
    if takes("sensor-fault"):
        p.add_argument(
            "--sensor-fault",
            type=_probability,
            default=0.0,
            metavar="P",
            help="probability per sample of a (valid) sensor-fault sample",
        )


def run(args: argparse.Namespace) -> int:
    """One line, never a traceback, for an argument that cannot be served: a balloon
    that does not parse (2), a link, truth file or TCP address it cannot make (1)."""
    try:
        return _simulate(args)
    except ValueError as exc:
        print(f"pvlog simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pvlog simulate: {_where(args, exc)}", file=sys.stderr)
        return 1


def _where(args: argparse.Namespace, exc: OSError) -> str:
    """The option an OS error came from, and why, in the OS's words."""
    why = exc.strerror or str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n]  # a link: its target second
    name = names[0] if names else ""
    options = (
        ("--truth", args.truth),
        ("--link", args.link),
        ("--micrometer-truth", args.micrometer_truth),
        ("--micrometer", args.micrometer),
        ("--control", args.control),
    )
    for option, value in options:
        if value and any(n == str(value) or n.startswith(str(value)) for n in names):
            return f"{option} {value}: {why}"
    if args.tcp:
        return f"--tcp {args.tcp}: {why}"
    return f"{name + ': ' if name else ''}{why}"


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def _simulate(args: argparse.Namespace) -> int:
    low, high, default = RATES[args.model]
    rate = default if args.rate is None else args.rate
    if not low <= rate <= high:
        print(f"pvlog simulate: --rate must be {low}..{high} for {args.model}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    player = ProfilePlayer(
        segments(
            args.profile,
            rng,
            rbp_atm=args.rbp,
            cycles=args.cycles,
            hold_s=args.hold,
            ramp_atm_s=args.ramp,
        )
    )
    faults = Faults(
        bad_checksum=args.bad_checksum,
        bad_field=args.bad_field,
        truncate=args.truncate,
        garbage=args.garbage,
        drop=args.drop,
        sync=args.sync,
    )
    balloon = Balloon.parse(args.balloon)
    device: SimDevice
    if args.model == "modbus":
        modbus = ModbusSettings(rate_hz=rate, unit_id=args.unit_id)
        device = ModbusDevice(modbus, player, rng, faults=faults)
    elif args.model == "micrometer":
        device = MicrometerDevice(MicrometerSettings(rate_hz=rate), player, balloon, rng)
    elif args.model == "gauge":
        gauge = GaugeSettings(rate_hz=rate, poll=args.poll, checksum=args.checksum,
                              noise_atm=args.noise)  # fmt: skip
        device = GaugeDevice(gauge, player, rng, faults=faults)
    elif args.model == "lbx":
        lbx = LbxSettings(
            rate_hz=rate,
            block_samples=args.block,
            drift_ppm=args.drift_ppm,
            noise_atm=args.noise,
            arterial=ArterialSettings(heart_rate_bpm=args.heart_rate, resonance=args.resonance),
        )
        if args.t0 is not None:
            lbx.t0_us = args.t0 % (1 << 32)
        device = LbxDevice(lbx, player, rng, balloon=balloon, faults=faults)
    else:
        settings = PvsSettings(
            rate_hz=rate,
            unit=args.unit or "ATM",
            drift_ppm=args.drift_ppm,
            noise_atm=args.noise,
            sensor_fault=args.sensor_fault,
        )
        if args.t0 is not None:
            settings.t0_us = args.t0 % (1 << 32)
        device = PvsDevice(settings, player, rng, balloon=balloon, faults=faults)
    link: Link
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        link = TcpLink(host or "127.0.0.1", int(port))
    else:
        link = PtyLink(args.link)
    truth: IO[str] | None = open(args.truth, "w", encoding="utf-8") if args.truth else None  # noqa: SIM115
    sim = Simulator(
        device,
        link,
        truth=truth,
        control_path=args.control,
        wait_listener=not args.no_wait,
        duration_s=args.duration,
        # A box sends a frame every ~10 ms: a finer tick keeps its send times close
        # to its sampling times, as a UART's are.
        tick_s=0.002 if args.model == "lbx" else TICK_S,
    )

    def ready(s: Simulator) -> None:
        print(s.link.address, flush=True)

    sims = [sim]
    mic_truth: IO[str] | None = None
    if args.micrometer:
        if args.micrometer_truth:
            mic_truth = open(args.micrometer_truth, "w", encoding="utf-8")  # noqa: SIM115
        mic = MicrometerDevice(MicrometerSettings(rate_hz=args.micrometer_rate), player,
                               balloon, random.Random(rng.random()), drives=False)  # fmt: skip
        mic_link = PtyLink(args.micrometer)
        wait = not args.no_wait
        sims.append(Simulator(mic, mic_link, truth=mic_truth, wait_listener=wait,
                              duration_s=args.duration))  # fmt: skip

    def stop() -> None:
        for s in sims:
            s.stopping.set()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        others: list[asyncio.Task[None]] = []

        def first_ready(s: Simulator) -> None:  # its port on the first line, the others after
            ready(s)
            others.extend(asyncio.ensure_future(m.run(on_ready=ready)) for m in sims[1:])

        await sims[0].run(on_ready=first_ready)
        await asyncio.gather(*others)

    try:
        asyncio.run(run())
    finally:
        for t in (truth, mic_truth):
            if t is not None:
                t.close()
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps({"simulator": args.model, **sim.status()}), file=sys.stderr, flush=True)
    return 0
