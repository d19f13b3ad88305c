"""An invasive arterial blood pressure waveform, as a fluid-filled catheter line shows it.

Per beat: a fast systolic upstroke, a decline to the dicrotic notch (aortic valve
closure, a small dip and rebound), then diastolic run-off decaying towards the
diastolic pressure. On top: a respiratory swing of a few mmHg, beat-to-beat rate
variability, and optionally the ringing of an underdamped catheter-transducer
system (a damped oscillation at ~18 Hz after each upstroke). Time is injected.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(slots=True)
class ArterialSettings:
    systolic: float = 120.0
    diastolic: float = 80.0
    heart_rate_bpm: float = 72.0
    """60-100 at rest; each beat varies by a few percent."""
    respiratory_mmhg: float = 3.0
    breaths_per_min: float = 14.0
    resonance: bool = False
    resonance_hz: float = 18.0


class ArterialPressure:
    def __init__(self, settings: ArterialSettings, rng: random.Random) -> None:
        self.s = settings
        self.rng = rng
        self.t = 0.0
        self._beat_start = 0.0
        self._beat_len = self._next_beat()

    def _next_beat(self) -> float:
        return 60.0 / self.s.heart_rate_bpm * self.rng.uniform(0.96, 1.04)

    def advance(self, dt: float) -> float:
        """Move on ``dt`` seconds; the pressure (mmHg) at the new time."""
        self.t += dt
        while self.t - self._beat_start >= self._beat_len:
            self._beat_start += self._beat_len
            self._beat_len = self._next_beat()
        return self.value()

    def value(self) -> float:
        s = self.s
        since = self.t - self._beat_start
        phase = since / self._beat_len
        pulse = s.systolic - s.diastolic
        notch_level = 0.55
        if phase < 0.12:  # upstroke
            shape = math.sin(phase / 0.12 * math.pi / 2) ** 2
        elif phase < 0.35:  # systolic decline to the notch
            x = (phase - 0.12) / 0.23
            shape = 1 - (1 - notch_level) * x**1.5
        else:  # notch, rebound, diastolic run-off
            x = phase - 0.35
            # Run-off that reaches diastolic exactly as the next beat starts.
            shape = notch_level * (math.exp(-x / 0.45) - math.exp(-0.65 / 0.45) * x / 0.65)
            shape += 0.06 * math.exp(-(((x - 0.04) / 0.025) ** 2))  # dicrotic wave
            shape -= 0.03 * math.exp(-((x / 0.01) ** 2))  # the incisura
        p = s.diastolic + pulse * max(0.0, shape)
        p += s.respiratory_mmhg * math.sin(2 * math.pi * self.t * s.breaths_per_min / 60)
        if s.resonance and since > 0.05:
            ring = since - 0.05
            p += 6.0 * math.exp(-ring / 0.04) * math.sin(2 * math.pi * s.resonance_hz * ring)
        return p
