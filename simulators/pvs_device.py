"""A simulated PVS bench inflation device: the physical model and its sentences.

``PvsDevice.step()`` takes one sample (time moves on by one sample period) and
returns what the device sends for it, each piece with its truth record: what was
meant, whether it is valid, and if not, why. Exact kPa in the truth is computed
from the emitted text with ``Fraction``, independently of the driver's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from drivers.pvs import FLAG_OVER_RANGE, FLAG_SENSOR_FAULT, sentence
from drivers.units import KPA_PER_UNIT
from simulators.device import WRAP, DeviceModel, Emission
from simulators.faults import junk

IDENTITY_EVERY_S = 10.0


@dataclass(slots=True)
class PvsSettings:
    rate_hz: float = 50.0
    unit: str = "ATM"
    drift_ppm: float = 0.0
    t0_us: int = WRAP - 5_000_000
    """Device clock at power-up: 5 s before the 32-bit wrap, so every run crosses it."""
    noise_atm: float = 0.003
    resolution: int = 3
    """Decimals shown for pressure (the device's display resolution)."""
    p_max_atm: float = 30.0
    model: str = "BIX-30"
    serial: str = "SN00417"
    firmware: str = "2.3.1"
    sensor_fault: float = 0.0
    """Probability per sample that the sensor reports a fault (a valid sample, flag bit 1)."""


class PvsDevice(DeviceModel[PvsSettings]):
    def _start(self) -> None:
        self._next_identity_s = 0.0
        self._over = False

    def reboot(self, new_t0_us: int | None = None) -> list[Emission]:
        """Power-up: seq and clock restart; identity and a BOOT event are sent."""
        self._restart(new_t0_us)
        self._next_identity_s = 0.0
        return self._boot()

    def _boot(self) -> list[Emission]:
        self.booted = True
        out = [self._identity()]
        out.append(self._event("BOOT", ""))
        return out

    def step(self) -> list[Emission]:
        """One sample period: the sample's sentence plus whatever else is due."""
        out: list[Emission] = [] if self.booted else self._boot()
        dt = 1.0 / self.s.rate_hz
        self.elapsed_s += dt
        self.player.advance(dt)
        if self.elapsed_s >= self._next_identity_s:
            out.append(self._identity())
        out.extend(self._sample())
        if self._marked():
            out.append(self._event("MARK", ""))
        return out

    def _identity(self) -> Emission:
        self._next_identity_s = self.elapsed_s + IDENTITY_EVERY_S
        s = self.s
        body = (
            f"PVID,{s.model},{s.serial},{s.firmware},{s.unit},-1,{s.p_max_atm:g},30,{s.rate_hz:g}"
        )
        return Emission(sentence(body), {"kind": "identity", "valid": True})

    def _event(self, code: str, detail: str) -> Emission:
        seq = (self.seq - 1) % 65536 if self.seq else 0
        body = f"PVEV,{seq},{self.t_us},{code},{detail}"
        return Emission(sentence(body), {"kind": "event", "code": code, "seq": seq, "valid": True})

    def _sample(self) -> list[Emission]:
        rng, s = self.rng, self.s
        seq, t_us = self.seq, self.t_us
        self.seq = (self.seq + 1) % 65536
        p_atm = self.player.pressure_atm
        volume = max(0.0, self.line.volume_ml(p_atm) + rng.gauss(0, 0.0005))
        p_shown = p_atm + rng.gauss(0, s.noise_atm)
        p_unit = Fraction(p_shown) * KPA_PER_UNIT["ATM"] / KPA_PER_UNIT[s.unit]
        p_text = f"{float(p_unit):.{s.resolution}f}"
        if p_text.startswith("-") and float(p_text) == 0:
            p_text = p_text[1:]
        v_text = f"{volume:.3f}"
        flags = 0
        out: list[Emission] = []
        if p_atm > s.p_max_atm:
            flags |= FLAG_OVER_RANGE
        if rng.random() < s.sensor_fault:
            flags |= FLAG_SENSOR_FAULT
        truth: dict[str, Any] = {
            "kind": "sample",
            "seq": seq,
            "t_us": t_us,
            "pressure": p_text,
            "unit": s.unit,
            "pressure_kpa": None
            if flags & FLAG_SENSOR_FAULT
            else float(Fraction(p_text) * KPA_PER_UNIT[s.unit]),
            "volume_ml": float(v_text),
            "flags": flags,
            "valid": True,
        }
        body = f"PVS,{seq},{t_us},{p_text},{s.unit},{v_text},{flags:02X}"
        data = sentence(body)
        f = self.faults
        if f.garbage and rng.random() < f.garbage:
            out.append(Emission(junk(rng), {"kind": "garbage", "valid": False}))
        if f.drop and rng.random() < f.drop:
            truth.update(valid=False, why="dropped", emitted=False)
            data = b""
        elif f.bad_checksum and rng.random() < f.bad_checksum:
            good = data[-4:-2]
            bad = b"%02X" % ((int(good, 16) + rng.randint(1, 255)) % 256)
            data = data[:-4] + bad + data[-2:]
            truth.update(valid=False, why="bad_checksum")
        elif f.bad_field and rng.random() < f.bad_field:
            data = sentence(body.replace(f",{v_text},", f",{v_text}.5,", 1))
            truth.update(valid=False, why="bad_field")
        elif f.truncate and rng.random() < f.truncate:
            data = data[: rng.randint(2, len(data) - 3)]
            truth.update(valid=False, why="truncated")
        out.append(Emission(data, truth))
        if flags & FLAG_OVER_RANGE and not self._over:
            out.append(self._event("OVR", f"{p_text} {s.unit}"))
        self._over = bool(flags & FLAG_OVER_RANGE)
        return out
