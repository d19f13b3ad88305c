"""How much fluid a balloon catheter takes at a given pressure.

Delivered volume = balloon volume + what the catheter's dead space takes up as
the line pressurises. The balloon unfolds in the first atmosphere or two, reaches
its nominal size (a cylinder: an 8x40 mm balloon holds about 2.0 mL) at nominal
pressure, and keeps growing slowly past it (semi-compliant: diameter about +1.5%
per atm, volume about twice that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FOLDED_MM = 1.1
"""A folded balloon's profile, wrapped on its catheter."""


@dataclass(frozen=True, slots=True)
class Balloon:
    diameter_mm: float = 8.0
    length_mm: float = 40.0
    nominal_atm: float = 8.0
    volume_compliance_per_atm: float = 0.03
    dead_space_ml: float = 0.25

    @property
    def nominal_ml(self) -> float:
        r = self.diameter_mm / 2
        return math.pi * r * r * self.length_mm / 1000

    def volume_ml(self, pressure_atm: float) -> float:
        if pressure_atm <= 0:
            return 0.0
        unfold = 1 - math.exp(-pressure_atm / 0.7)
        growth = max(0.5, 1 + self.volume_compliance_per_atm * (pressure_atm - self.nominal_atm))
        dead = self.dead_space_ml * (1 - math.exp(-pressure_atm / 0.3))
        return self.nominal_ml * unfold * growth + dead

    def outer_diameter_mm(self, pressure_atm: float) -> float:
        """What a laser micrometer reads across it: the folded profile until it unfolds,
        then a cylinder of the balloon's volume (its diameter grows half as fast)."""
        unfold = 1 - math.exp(-max(pressure_atm, 0.0) / 0.7)
        growth = max(0.5, 1 + self.volume_compliance_per_atm * (pressure_atm - self.nominal_atm))
        return max(FOLDED_MM, self.diameter_mm * math.sqrt(unfold * growth))

    @classmethod
    def parse(cls, text: str) -> Balloon:
        """``"8x40"`` (diameter x length, mm)."""
        d, _, length = text.lower().partition("x")
        try:
            balloon = cls(diameter_mm=float(d), length_mm=float(length))
        except ValueError:
            raise ValueError(f"--balloon {text!r}: diameter x length in mm, e.g. 8x40") from None
        if not (balloon.diameter_mm > 0 and balloon.length_mm > 0):
            raise ValueError(f"--balloon {text!r}: diameter and length must be positive")
        return balloon
