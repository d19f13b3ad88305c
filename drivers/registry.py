"""Every device protocol pvlog speaks, found by its config name.

Acquisition, config validation and the recording tools all ask this registry, so
adding a driver is one entry here (and its module); an unknown name is an error
that names the known ones, never a silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from drivers.errors import PvlogError
from drivers.lbx import Channel, LbxParser
from drivers.lines import LinesParser, LinesSpec
from drivers.modbus import ModbusParser, Register
from drivers.pvs import PvsParser
from drivers.records import Record


class Parser(Protocol):
    """A sans-IO decoder for one port: bytes in, records out, never raising on bad input.

    Identity reaches acquisition as ``DeviceInfo`` records among the others.
    """

    @property
    def allowed_writes(self) -> frozenset[bytes]:
        """The exact byte strings pvlog may send; empty for a streaming device."""
        ...

    @property
    def dropped(self) -> Mapping[str, int]:
        """What was dropped, by reason (``garbage_bytes`` counts bytes, the rest frames)."""
        ...

    @property
    def boots(self) -> int:
        """Device restarts seen: its clock started again."""
        ...

    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Record]: ...


class Polled(Parser, Protocol):
    """A driver that asks: its requests go out in turn, each answered or timed out
    (``daemon.acquisition.polling``), and each round's readings come from ``end_cycle``."""

    @property
    def requests(self) -> tuple[bytes, ...]: ...

    @property
    def awaiting(self) -> bool: ...

    @property
    def outcome(self) -> str | None: ...

    def sent(self, index: int) -> None: ...

    def timed_out(self) -> None: ...

    def end_cycle(self) -> list[Record]: ...


class Options(NamedTuple):
    """What a device's config tells its driver beyond the port."""

    channels: Sequence[Channel] = ()
    """LBX: the channel map used before the box's first INFO."""
    unit_id: int = 1
    registers: Sequence[Register] = ()
    """Modbus: what to read."""
    lines: LinesSpec | None = None
    """An ASCII instrument: its line, as its config describes it."""


@dataclass(frozen=True)
class Driver:
    name: str
    summary: str
    default_baudrate: int
    """The spec's link speed, used when a device's config gives none."""
    takes_channel_map: bool
    """Whether ``[[device.channels]]`` means anything to it."""
    _make: Callable[[Options], Parser]
    polled: bool = False
    """It always asks (read requests, declared in ``allowed_writes``) and takes
    registers. A ``lines`` instrument asks only when its config gives a poll string:
    whether a parser asks is whether it declares writes."""
    described: bool = False
    """What it decodes is described in the device's config (registers, a line): a
    recording's bytes alone cannot be decoded again without it."""
    clockless: bool = False
    """Its samples carry no device time: each is stamped when its bytes are read, so it
    is read on every arrival unless told otherwise (at 16 ms between reads a streaming
    line was stamped a median 32 ms late; beside a clocked inflation device, a diameter
    read at the wrong pressure)."""

    def parser(self, options: Options | None = None) -> Parser:
        return self._make(options or Options())


class UnknownDriver(PvlogError):
    """No driver of that name."""


DRIVERS: Mapping[str, Driver] = {
    d.name: d
    for d in (
        Driver(
            "pvs", "bench inflation device, ASCII sentences", 115200, False, lambda _: PvsParser()
        ),
        Driver(
            "lbx",
            "cath-lab interface box, binary frames",
            921600,
            True,
            lambda o: LbxParser(o.channels or None),
        ),
        Driver(
            "modbus",
            "Modbus RTU instrument, polled: read functions 3 and 4 only",
            19200,
            False,
            lambda o: ModbusParser(o.unit_id, o.registers),
            polled=True,
            described=True,
            clockless=True,
        ),
        Driver(
            "lines",
            "ASCII instrument described in config: a line, a pattern, an optional poll",
            9600,
            False,
            lambda o: LinesParser(o.lines or LinesSpec("", ())),
            described=True,
            clockless=True,
        ),
    )
}


def driver(name: str) -> Driver:
    try:
        return DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise UnknownDriver(f"unknown driver {name!r} (known: {known})") from None
