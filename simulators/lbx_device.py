"""A simulated LBX cath-lab interface box: balloon pressure and volume, invasive blood
pressure, markers and fluoroscopy events, in binary frames.

``LbxDevice.step()`` takes one sample of every channel and returns the frames that
became due, each with its truth record. A SAMPLES frame goes out when its block is
full; its truth lists every sample with the value the spec's formula gives for the
raw integer sent (raw x scale + offset), and how long before the frame it was taken.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from drivers.lbx import (
    TYPE_EVENT,
    TYPE_HEARTBEAT,
    TYPE_INFO,
    TYPE_SAMPLES,
    Channel,
    frame,
    layout_for,
)
from drivers.units import KPA_PER_ATM
from simulators.arterial import ArterialPressure, ArterialSettings
from simulators.device import WRAP, DeviceModel, Emission
from simulators.faults import junk

INFO_EVERY_S = 1.0
SYNC_RAW = 0x5AA5
"""A raw value whose little-endian bytes start with SYNC1 SYNC2 (232.05 kPa)."""

CHANNELS = (
    Channel(0, "pressure", "kPa", 0.01, 0.0, "bal_p"),
    Channel(1, "volume", "mL", 0.001, 0.0, "bal_v"),
    Channel(2, "ibp", "mmHg", 0.01, 0.0, "ibp"),
)
_KIND_CODE = {"pressure": 1, "volume": 2, "ibp": 3, "temperature": 4}
_UNIT_CODE = {"kPa": 1, "mmHg": 2, "mL": 3, "atm": 4, "C": 5}
_EVENT_CODE = {"mark": 1, "fluoro_on": 2, "fluoro_off": 3}


@dataclass(slots=True)
class LbxSettings:
    rate_hz: float = 1000.0
    block_samples: int = 0
    """Samples per SAMPLES frame; 0: about 100 frames a second."""
    drift_ppm: float = 0.0
    t0_us: int = WRAP - 5_000_000
    noise_atm: float = 0.003
    model: str = "CLX-4"
    serial: str = "LBX0042"
    firmware: str = "1.0.7"
    fluoro_every_s: float = 8.0
    """Mean time between fluoroscopy on/off switches."""
    arterial: ArterialSettings = field(default_factory=ArterialSettings)

    @property
    def nsamp(self) -> int:
        return self.block_samples or max(1, round(self.rate_hz / 100))

    @property
    def period_us(self) -> int:
        return round(1e6 / self.rate_hz)


class LbxDevice(DeviceModel[LbxSettings]):
    def _start(self) -> None:
        self.arterial = ArterialPressure(self.s.arterial, self.rng)
        self.channels = CHANNELS
        self._layout = layout_for(CHANNELS)[0]
        self._rows: list[tuple[float, int, tuple[int, ...]]] = []
        self._next_info_s = 0.0
        self._fluoro = False
        self._next_fluoro_s = self.rng.expovariate(1 / self.s.fluoro_every_s)

    def reboot(self, new_t0_us: int | None = None) -> list[Emission]:
        """Power-up: block_seq, clock and uptime restart; INFO and a heartbeat go out."""
        self._restart(new_t0_us)
        self._rows.clear()
        self._next_info_s = 0.0
        return self._boot()

    def _boot(self) -> list[Emission]:
        self.booted = True
        return self._info()

    def idle(self, dt: float) -> None:
        super().idle(dt)
        self.arterial.advance(dt)

    def step(self) -> list[Emission]:
        out: list[Emission] = [] if self.booted else self._boot()
        dt = 1.0 / self.s.rate_hz
        self.elapsed_s += dt
        self.player.advance(dt)
        ibp = self.arterial.advance(dt)
        if self.elapsed_s >= self._next_info_s:
            out.extend(self._info())
        p_atm = self.player.pressure_atm + self.rng.gauss(0, self.s.noise_atm)
        volume = max(0.0, self.line.volume_ml(self.player.pressure_atm) + self.rng.gauss(0, 5e-4))
        raw = (round(p_atm * KPA_PER_ATM / 0.01), round(volume / 0.001), round(ibp / 0.01))
        self._rows.append((self.elapsed_s, self.t_us, raw))
        if len(self._rows) >= self.s.nsamp:
            out.extend(self._block())
        if self._marked():
            out.append(self._event("mark"))
        if self.elapsed_s >= self._next_fluoro_s:
            self._fluoro = not self._fluoro
            self._next_fluoro_s = self.elapsed_s + self.rng.expovariate(1 / self.s.fluoro_every_s)
            out.append(self._event("fluoro_on" if self._fluoro else "fluoro_off"))
        return out

    def _info(self) -> list[Emission]:
        self._next_info_s = self.elapsed_s + INFO_EVERY_S
        s = self.s
        payload = struct.pack(
            "<B16s16s8sB",
            1,
            s.serial.encode(),
            s.model.encode(),
            s.firmware.encode(),
            len(self.channels),
        )
        for ch in self.channels:
            payload += struct.pack(
                "<BBBdd8s",
                ch.ch_id,
                _KIND_CODE[ch.kind],
                _UNIT_CODE[ch.unit],
                ch.scale,
                ch.offset,
                ch.name.encode(),
            )
        uptime = int(self.elapsed_s)
        return [
            Emission(frame(TYPE_INFO, payload), {"kind": "identity", "valid": True}),
            Emission(
                frame(TYPE_HEARTBEAT, struct.pack("<II", self.t_us, uptime)),
                {"kind": "heartbeat", "uptime_s": uptime, "valid": True},
            ),
        ]

    def _event(self, code: str) -> Emission:
        data = frame(TYPE_EVENT, struct.pack("<IBBi", self.t_us, _EVENT_CODE[code], 0, 0))
        return Emission(data, {"kind": "event", "code": code, "t_us": self.t_us, "valid": True})

    def _block(self) -> list[Emission]:
        rng, f = self.rng, self.faults
        rows, self._rows = self._rows, []
        if f.sync and rng.random() < f.sync:
            k = rng.randrange(len(rows))
            taken, t, raw = rows[k]
            rows[k] = (taken, t, (SYNC_RAW, *raw[1:]))
        seq, t0, period = self.seq, rows[0][1], self.s.period_us
        self.seq = (self.seq + 1) % 65536
        flat = [v for _, _, raw in rows for v in raw]
        head = struct.pack("<HIIBB", seq, t0, period, len(self.channels), len(rows))
        data = frame(TYPE_SAMPLES, head + struct.pack(f"<{len(flat)}i", *flat))
        last = rows[-1][0]
        samples = [
            {
                "t_us": (t0 + k * period) % WRAP,
                "values": self._values(raw),
                "ago_ns": round((last - taken) * 1e9),
            }
            for k, (taken, _, raw) in enumerate(rows)
        ]
        truth: dict[str, Any] = {
            "kind": "block",
            "block_seq": seq,
            "samples": samples,
            "valid": True,
        }
        out: list[Emission] = []
        if f.garbage and rng.random() < f.garbage:
            out.append(Emission(junk(rng, binary=True), {"kind": "garbage", "valid": False}))
        if f.drop and rng.random() < f.drop:
            truth.update(valid=False, why="dropped", emitted=False)
            data = b""
        elif f.bad_checksum and rng.random() < f.bad_checksum:
            data = data[:-1] + bytes((data[-1] ^ rng.randint(1, 255),))
            truth.update(valid=False, why="bad_crc")
        elif f.truncate and rng.random() < f.truncate:
            data = data[: rng.randint(3, len(data) - 1)]
            truth.update(valid=False, why="truncated")
        out.append(Emission(data, truth))
        return out

    def _values(self, raw: tuple[int, ...]) -> dict[str, float]:
        """What the spec's formula makes of ``raw``: raw x scale + offset, in f64."""
        return {
            name: raw[index] * scale + offset
            for name, (index, scale, offset, _num, _den) in zip(
                self._layout.fields, self._layout.columns, strict=True
            )
        }
