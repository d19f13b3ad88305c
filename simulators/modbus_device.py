"""A Keller-style Modbus RTU pressure transmitter: a slave that answers read requests
with the inflation line's pressure, so ``config/keller.toml`` runs without hardware.

It answers functions 3 and 4 (read holding / input registers) at its unit id: P1 as
float32 big-endian in bar at 0x0002 (and 0x0100), the temperature TOB1 in °C at 0x0008
(and 0x0108). A request for another register gets exception 2 (illegal data address),
another function exception 1; a request with a bad CRC or for another unit id gets
nothing, as on a shared RS-485 line. Faults, per request: ``bad_checksum`` a reply
with a wrong CRC, ``drop`` no reply at all, ``bad_field`` exception 4 (slave device
failure). Everything it heard that was not a well-formed read is counted
(``ignored_bytes``, ``unknown_requests``): the logger's safety invariant, seen from
the instrument's side.

Its CRC is its own (not the driver's), so the two check each other.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from drivers.units import KPA_PER_UNIT
from simulators.device import Emission
from simulators.faults import Faults
from simulators.profiles import ProfilePlayer

REQUEST = 8
"""unit, function, address (2), count (2), CRC (2)."""
P1 = (0x0002, 0x0100)
TOB1 = (0x0008, 0x0108)


def crc(data: bytes) -> bytes:
    """Modbus RTU's CRC-16 (poly 0xA001, init 0xFFFF), low byte first, bit by bit."""
    value = 0xFFFF
    for byte in data:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value.to_bytes(2, "little")


@dataclass
class ModbusSettings:
    rate_hz: float = 100.0
    """How often the true pressure is taken (answers give the latest)."""
    unit_id: int = 1
    temperature_c: float = 23.5


class ModbusDevice:
    def __init__(
        self,
        settings: ModbusSettings,
        player: ProfilePlayer,
        rng: random.Random,
        *,
        faults: Faults | None = None,
    ) -> None:
        self.s = settings
        self.player = player
        self.rng = rng
        self.faults = faults or Faults()
        self.seq = 0
        self.clock_us0 = 0
        self.asked = 0
        self.ignored_bytes = 0
        self.unknown_requests = 0
        self._heard = bytearray()

    def reboot(self, new_t0_us: int | None = None) -> list[Emission]:
        return []  # no clock, nothing announced

    def idle(self, dt: float) -> None:
        self.player.advance(dt)

    def step(self) -> list[Emission]:
        self.player.advance(1.0 / self.s.rate_hz)
        return []  # it speaks only when asked

    def answer(self, data: bytes) -> list[Emission]:
        """Its replies to what the master sent: one per whole, well-formed request."""
        self._heard += data
        out: list[Emission] = []
        while len(self._heard) >= REQUEST:
            frame = bytes(self._heard[:REQUEST])
            if crc(frame[:6]) != frame[6:]:  # not a request (noise, or cut): slide on
                self.ignored_bytes += 1
                del self._heard[0]
                continue
            del self._heard[:REQUEST]
            if frame[0] != self.s.unit_id:
                continue  # another instrument's, on a shared line
            self.asked += 1
            reply = self._reply(frame)
            if reply is not None:
                out.append(reply)
        return out

    def _reply(self, frame: bytes) -> Emission | None:
        unit, function = frame[0], frame[1]
        address, count = struct.unpack(">HH", frame[2:6])
        f = self.faults
        if f.drop and self.rng.random() < f.drop:
            return None  # silent this time: the master times out
        truth: dict[str, Any] = {"kind": "answer", "function": function, "address": address}
        if function not in (3, 4):
            self.unknown_requests += 1
            return self._exception(unit, function, 1, truth)
        if f.bad_field and self.rng.random() < f.bad_field:
            return self._exception(unit, function, 4, truth)
        if count != 2 or address not in P1 + TOB1:
            self.unknown_requests += 1
            return self._exception(unit, function, 2, truth)
        if address in P1:
            bar = self.player.pressure_atm * 1.01325
            value = struct.pack(">f", bar)
            self.seq += 1
            kpa = float(Fraction(struct.unpack(">f", value)[0]) * KPA_PER_UNIT["BAR"])
            truth.update(kind="sample", seq=self.seq, pressure_kpa=kpa, valid=True)
        else:
            value = struct.pack(">f", self.s.temperature_c)
            truth.update(temperature_c=self.s.temperature_c)
        body = bytes([unit, function, 4]) + value
        check = crc(body)
        if f.bad_checksum and self.rng.random() < f.bad_checksum:
            check = bytes([check[0] ^ 0xFF, check[1]])
            truth.update(valid=False, why="bad_crc")
        return Emission(body + check, truth)

    def _exception(self, unit: int, function: int, code: int, truth: dict[str, Any]) -> Emission:
        body = bytes([unit, function | 0x80, code])
        truth.update(kind="exception", code=code, valid=False)
        return Emission(body + crc(body), truth)
