"""A laser scan micrometer across the balloon: its outer diameter in mm, a line each reading.

What compliance testing measures beside the pressure: the instrument streams
``+08.1234\\r\\n`` (mm, four decimals, the sign first) some 10-100 times a second, and has
no clock: pvlog reads it as a ``lines`` device (``config/micrometer.toml``). On a bench
it watches the same balloon the inflation device pressurises, so in a bench simulation
(``pvlog simulate pvs ... --micrometer LINK``) it shares that device's ``ProfilePlayer``
and balloon and never moves the profile on itself (``drives=False``): pressure and
diameter agree in time as on a real bench. On its own it plays the profile.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from simulators.balloon import Balloon
from simulators.device import Emission
from simulators.faults import Faults
from simulators.profiles import ProfilePlayer


@dataclass
class MicrometerSettings:
    rate_hz: float = 50.0
    noise_mm: float = 0.002


class MicrometerDevice:
    def __init__(
        self,
        settings: MicrometerSettings,
        player: ProfilePlayer,
        balloon: Balloon,
        rng: random.Random,
        *,
        drives: bool = True,
    ) -> None:
        self.s = settings
        self.player = player
        self.balloon = balloon
        self.rng = rng
        self.drives = drives
        self.faults = Faults()
        self.seq = 0
        self.clock_us0 = 0

    def reboot(self, new_t0_us: int | None = None) -> list[Emission]:
        return []  # no clock, nothing announced

    def idle(self, dt: float) -> None:
        if self.drives:
            self.player.advance(dt)

    def step(self) -> list[Emission]:
        if self.drives:
            self.player.advance(1.0 / self.s.rate_hz)
        self.seq += 1
        p_atm = self.player.pressure_atm
        true_mm = self.balloon.outer_diameter_mm(p_atm)
        shown = f"{true_mm + self.rng.gauss(0, self.s.noise_mm):+08.4f}"
        truth: dict[str, Any] = {
            "kind": "sample",
            "seq": self.seq,
            "diameter_mm": float(shown),
            "true_diameter_mm": true_mm,
            "pressure_atm": p_atm,
            "valid": True,
        }
        return [Emission(f"{shown}\r\n".encode(), truth)]
