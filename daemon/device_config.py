"""``[[device]]``: one table per device, and what its driver takes beyond the port (an
LBX's channel map; a Modbus instrument's registers, unit id and polling; an ASCII
instrument's line).

Validated here, at load, so a register map that cannot be read (an unknown type, a
pressure in mL, a write function) is a one-line error naming the key, never a
surprise on the bench.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from daemon.section import NAME, Section
from drivers import registry
from drivers.lbx import Channel, layout_for
from drivers.lines import Field as LineField
from drivers.lines import LinesParser, LinesSpec
from drivers.modbus import PRESETS, TYPES, Register, field_factor

_FIELD = r"^[a-z][a-z0-9_]{0,63}$"


class ChannelConfig(Section):
    """One LBX channel, for recording before the box's first INFO (INFO wins when it comes)."""

    kind: Literal["pressure", "volume", "ibp", "temperature"]
    unit: Literal["kPa", "mmHg", "mL", "atm", "C"]
    scale: float
    offset: float = 0.0
    name: str = ""


class RegisterConfig(Section):
    """One Modbus value: where it is, how it is encoded, and the field it becomes."""

    field: Annotated[str, Field(pattern=_FIELD)]
    address: Annotated[int, Field(ge=0, le=0xFFFF)]
    type: Literal["float32", "int16", "uint16", "int32", "uint32"] = "float32"
    function: Literal[3, 4] = 3
    """3: holding registers, 4: input registers. pvlog never writes."""
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""

    @model_validator(mode="after")
    def _unit_fits(self) -> RegisterConfig:
        try:
            field_factor(self.field, self.unit)
        except ValueError as exc:
            raise ValueError(f"unit {self.unit!r}: {exc}") from None
        if self.address + TYPES[self.type][0] > 0x10000:
            raise ValueError("address: the value runs past register 0xFFFF")
        return self

    def register(self) -> Register:
        return Register(self.field, self.address, self.type, self.function, self.word_order,
                        self.byte_order, self.scale, self.offset, self.unit)  # fmt: skip


class LineFieldConfig(Section):
    """One named group of a ``lines`` instrument's pattern, and the field it becomes."""

    group: Annotated[str, Field(min_length=1)]
    field: Annotated[str, Field(pattern=_FIELD)]
    unit: str = ""
    """The reading's unit; empty with ``unit_group`` set: the unit each line names."""
    unit_group: str = ""
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _unit_fits(self) -> LineFieldConfig:
        if self.unit or not self.unit_group:
            try:
                field_factor(self.field, self.unit)
            except ValueError as exc:
                raise ValueError(f"unit {self.unit!r}: {exc}") from None
        return self

    def spec(self) -> LineField:
        return LineField(self.group, self.field, self.unit, self.unit_group, self.scale,
                         self.offset)  # fmt: skip


class DeviceConfig(Section):
    name: Annotated[str, Field(pattern=NAME)]
    driver: str
    """A name in ``drivers.registry.DRIVERS``."""
    port: Annotated[str, Field(min_length=1)]
    baudrate: Annotated[int, Field(ge=300, le=4_000_000)] = 0
    """0 or absent: the driver's default (its spec's link speed)."""
    read_interval_ms: Annotated[float, Field(ge=0, le=1000)] = 16
    """While bytes flow, read the port this often (0: on every arrival). Longer costs
    less CPU per sample with many fast devices; samples keep their device times. A
    driver whose samples have no device time (modbus, lines) reads on every arrival
    unless told otherwise: its receive time is its sample's."""
    max_drop_share: Annotated[float, Field(gt=0, le=1)] = 0.10
    """More of its lines or frames dropped than this over a minute: the device is
    degraded (said in the log, ``/healthz``, the live page; ``--probe`` fails)."""
    latency_ms: Annotated[float, Field(ge=0, le=10_000)] = 0
    """A device without a clock (``lines``, ``modbus``): the instrument's documented
    delay from taking a reading to sending it, subtracted from its receive time."""
    channels: list[ChannelConfig] = Field(default_factory=list)
    """LBX only: the channel map, in the box's channel order."""
    stall_timeout_s: Annotated[float, Field(ge=0, le=3600)] = 5.0
    """An open port silent this long is a stalled device (a ``stalled`` event and
    status); 0: never. Both supported devices send at least once a second."""
    unit_id: Annotated[int, Field(ge=1, le=247)] = 1
    """Modbus: the instrument's address on the bus."""
    preset: Literal["", "keller", "keller-0100"] = ""
    """Modbus: a known instrument's registers (``drivers.modbus.PRESETS``)."""
    registers: list[RegisterConfig] = Field(default_factory=list)
    """Modbus: what to read, each cycle, in this order (after the preset's)."""
    poll_interval_ms: Annotated[float, Field(ge=10, le=3_600_000)] = 100
    """Modbus: a cycle starts this often (later, if the last one took longer)."""
    timeout_ms: Annotated[float, Field(ge=5, le=10_000)] = 200
    """Modbus: how long an answer may take."""
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    """Modbus, or lines with a poll: a request that timed out or failed is sent again
    this often."""
    pattern: str = ""
    """Lines: a regular expression a whole line matches; its named groups are readings."""
    fields: list[LineFieldConfig] = Field(default_factory=list)
    """Lines: which group becomes which field, in which unit."""
    terminator: Annotated[str, Field(min_length=1)] = "\r\n"
    """Lines: the bytes that end a line."""
    checksum: Literal["none", "xor", "sum"] = "none"
    """Lines: ``*HH`` at the line's end, the XOR (NMEA) or the sum of the bytes before."""
    poll: str = ""
    """Lines: sent every ``poll_interval_ms`` to ask for a line (``"*R\\r"``): the only
    bytes pvlog will ever write to it. Empty: the instrument streams."""

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        try:
            registry.driver(v)
        except registry.UnknownDriver as exc:
            raise ValueError(str(exc)) from None  # pydantic names the key
        return v

    @model_validator(mode="after")
    def _per_driver(self) -> DeviceConfig:
        spec = registry.driver(self.driver)
        if self.baudrate == 0:
            object.__setattr__(self, "baudrate", spec.default_baudrate)
        if spec.clockless and "read_interval_ms" not in self.model_fields_set:
            # A line (an answer) is read the moment it arrives: its receive time is its
            # sample's, and it has no other.
            object.__setattr__(self, "read_interval_ms", 0.0)
        if self.latency_ms and not spec.clockless:
            raise ValueError(
                "latency_ms: only for a device without a clock (lines, modbus); this "
                "driver's samples carry the device's own time"
            )
        if self.channels:
            if not spec.takes_channel_map:
                raise ValueError("channels: only the lbx driver takes a channel map")
            _layout, skipped = layout_for(self.channel_map())
            if skipped:
                raise ValueError(f"channels: {skipped[0]}")
        if spec.polled and not self.register_map():
            raise ValueError("registers: a modbus device needs a preset or registers to read")
        if not spec.polled and (self.registers or self.preset):
            raise ValueError("registers, preset: only the modbus driver reads registers")
        lines = self.driver == "lines"
        if lines and not (self.pattern and self.fields):
            raise ValueError("pattern, fields: a lines device needs a pattern and fields")
        if not lines and (self.pattern or self.fields or self.poll):
            raise ValueError("pattern, fields, poll: only the lines driver takes them")
        if lines:
            try:
                LinesParser(self.lines_spec())
            except (ValueError, re.error) as exc:
                raise ValueError(f"pattern: {exc}") from None
        return self

    def channel_map(self) -> list[Channel]:
        return [
            Channel(i, c.kind, c.unit, c.scale, c.offset, c.name)
            for i, c in enumerate(self.channels)
        ]

    def register_map(self) -> list[Register]:
        preset = list(PRESETS[self.preset]) if self.preset else []
        return preset + [r.register() for r in self.registers]

    def lines_spec(self) -> LinesSpec:
        fields = [f.spec() for f in self.fields]
        return LinesSpec(self.pattern, fields, self.terminator.encode("latin-1"),
                         self.checksum, self.poll.encode("latin-1"))  # fmt: skip

    def options(self) -> registry.Options:
        """What the driver takes from this table."""
        lines = self.lines_spec() if self.driver == "lines" else None
        return registry.Options(self.channel_map(), self.unit_id, self.register_map(), lines)


def same_port(port: str) -> str:
    """What ``port`` opens, so two names for one port compare equal: a device path with
    its links resolved (``/dev/serial/by-id/...`` is a link to ``/dev/ttyUSB0``), a
    network port's URL in lower case."""
    if "://" in port:
        return port.lower().rstrip("/")
    return os.path.realpath(port)
