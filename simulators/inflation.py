"""The inflation line a device measures: the operator's profile pushing fluid into a balloon.

Shared by every simulated device so a PVS bench inflator and an LBX box on the same
profile see the same physics: pressure from the profile, delivered volume from the
balloon's compliance, and after a burst, volume that keeps rising while pressure
collapses (the fluid now leaks out of the ruptured balloon); a leaking balloon's
volume stays put while its pressure bleeds away.
"""

from __future__ import annotations

from simulators.balloon import Balloon
from simulators.profiles import ProfilePlayer


class InflationLine:
    def __init__(self, player: ProfilePlayer, balloon: Balloon) -> None:
        self.player = player
        self.balloon = balloon
        self._burst_volume: float | None = None

    def volume_ml(self, p_atm: float) -> float:
        """Delivered volume at line pressure ``p_atm`` (true value, no noise)."""
        if self.player.burst or self.player.leaking:
            if self._burst_volume is None:
                self._burst_volume = self.balloon.volume_ml(max(p_atm, 0.0))
            return self._burst_volume + self.player.leak_ml
        return self.balloon.volume_ml(p_atm)
