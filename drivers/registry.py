"""Every device protocol pvlog speaks, found by its config name.

Acquisition, config validation and the recording tools all ask this registry, so
adding a driver is one entry here (and its module); an unknown name is an error
that names the known ones, never a silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from drivers.errors import PvlogError
from drivers.lbx import Channel, LbxParser
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


@dataclass(frozen=True)
class Driver:
    name: str
    summary: str
    default_baudrate: int
    """The spec's link speed, used when a device's config gives none."""
    takes_channel_map: bool
    """Whether ``[[device.channels]]`` means anything to it."""
    _make: Callable[[Sequence[Channel]], Parser]

    def parser(self, channel_map: Sequence[Channel] = ()) -> Parser:
        return self._make(channel_map)


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
            lambda channels: LbxParser(channels or None),
        ),
    )
}


def driver(name: str) -> Driver:
    try:
        return DRIVERS[name]
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise UnknownDriver(f"unknown driver {name!r} (known: {known})") from None
