"""What every simulated device shares: a drifting 32-bit microsecond clock that wraps,
the inflation line it measures, seeded randomness, faults, and its own sample time.

A device model's ``step()`` takes one sample and returns ``Emission``s: the bytes
sent and the truth record that says what they are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from simulators.balloon import Balloon
from simulators.faults import Faults
from simulators.inflation import InflationLine
from simulators.profiles import ProfilePlayer

WRAP = 1 << 32


@dataclass(slots=True)
class Emission:
    """Bytes the device sends and the truth record that says what they are."""

    data: bytes
    truth: dict[str, Any] = field(default_factory=dict)


class Timing(Protocol):
    @property
    def t0_us(self) -> int: ...
    @property
    def drift_ppm(self) -> float: ...


S = TypeVar("S", bound=Timing)


class DeviceModel(Generic[S]):
    """A device of settings ``S``; a model adds its own state in ``_start``."""

    def __init__(
        self,
        settings: S,
        player: ProfilePlayer,
        rng: random.Random,
        *,
        balloon: Balloon | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.s = settings
        self.player = player
        self.rng = rng
        self.balloon = balloon or Balloon()
        self.line = InflationLine(player, self.balloon)
        self.faults = faults or Faults()
        self.drift_ppm = settings.drift_ppm
        self.seq = 0
        self.elapsed_s = 0.0
        self.clock_us0 = settings.t0_us
        self.booted = False
        self._marks_seen = 0
        self._start()

    def _start(self) -> None:
        """The model's own state, set up once at construction."""

    @property
    def t_us(self) -> int:
        """The device's own clock: drifting, 32-bit, wrapping."""
        drifted = self.elapsed_s * 1e6 * (1 + self.drift_ppm * 1e-6)
        return (self.clock_us0 + int(drifted)) % WRAP

    def _restart(self, new_t0_us: int | None) -> None:
        """Power-up: the sequence counter and the clock start again."""
        self.seq = 0
        self.elapsed_s = 0.0
        self.clock_us0 = self.rng.randrange(0, 1_000_000) if new_t0_us is None else new_t0_us
        self.booted = False

    def idle(self, dt: float) -> None:
        """Time passes but the device sends nothing (stalled firmware): no sample is taken."""
        self.elapsed_s += dt
        self.player.advance(dt)

    def _marked(self) -> bool:
        """The operator pressed the marker button since the last call."""
        if self.player.marks > self._marks_seen:
            self._marks_seen = self.player.marks
            return True
        return False
