"""A Druck-style pressure indicator: one ASCII line per reading, ``1.01325,bar``; for
the ``lines`` driver, which knows it only from a config file (``config/druck.toml``).

Streaming, it sends a line every sample period. Polled (``poll``), it says nothing
until asked ``*R\\r``, then answers one line with the pressure at that moment; any
other bytes it ignores, as such an instrument does. With ``checksum`` the line is
NMEA-like, ``$P,1.01325,bar*3A``: the XOR of the bytes between ``$`` and ``*``.
Pressure follows the inflation profile, as the other simulators' does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from drivers.units import KPA_PER_UNIT
from simulators.device import Emission
from simulators.faults import Faults
from simulators.profiles import ProfilePlayer

POLL = b"*R\r"


@dataclass
class GaugeSettings:
    rate_hz: float = 10.0
    """Streaming: lines a second. Polled: how often the true pressure is taken."""
    poll: bool = False
    checksum: bool = False
    noise_atm: float = 0.0


class GaugeDevice:
    def __init__(
        self,
        settings: GaugeSettings,
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
        self._heard = bytearray()

    def reboot(self, new_t0_us: int | None = None) -> list[Emission]:
        return []  # it has no clock and announces nothing

    def idle(self, dt: float) -> None:
        self.player.advance(dt)

    def step(self) -> list[Emission]:
        self.player.advance(1.0 / self.s.rate_hz)
        return [] if self.s.poll else [self._line()]

    def answer(self, data: bytes) -> list[Emission]:
        """What it says to ``data`` from the host: a line per whole ``*R\\r``."""
        if not self.s.poll:
            self.ignored_bytes += len(data)
            return []
        self._heard += data
        out = []
        while (at := self._heard.find(POLL)) >= 0:
            self.ignored_bytes += at
            del self._heard[: at + len(POLL)]
            self.asked += 1
            out.append(self._line())
        if len(self._heard) > 64:  # noise on the line: forget it
            self.ignored_bytes += len(self._heard)
            self._heard.clear()
        return out

    def _line(self) -> Emission:
        self.seq += 1
        p_atm = self.player.pressure_atm + self.rng.gauss(0, self.s.noise_atm)
        text = f"{p_atm * 1.01325:.5f}"  # bar, to the 10 Pa the indicator shows
        truth: dict[str, Any] = {
            "kind": "sample",
            "seq": self.seq,
            "pressure_kpa": float(Fraction(text) * KPA_PER_UNIT["BAR"]),
            "valid": True,
        }
        if not self.s.checksum:
            return Emission(f"{text},bar\r\n".encode(), truth)
        body = f"P,{text},bar"
        check = 0
        for byte in body.encode():
            check ^= byte
        if self.faults.bad_checksum and self.rng.random() < self.faults.bad_checksum:
            check ^= self.rng.randint(1, 255)
            truth.update(valid=False, why="bad_checksum")
        return Emission(f"${body}*{check:02X}\r\n".encode(), truth)
