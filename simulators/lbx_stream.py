"""A long LBX stream made cheaply: the simulator's waveform once, then only headers and CRCs.

For loads and floods (``bench/lbx_feeder.py``, the flood test), where a Python simulator
costing tens of microseconds a sample would be the bottleneck: the sample bytes of
``WAVEFORM_BLOCKS`` blocks of a simulated fatigue run are taken once and reused in turn;
per block only the header (sequence, device time) and the CRC are made, in C
(``struct``, ``binascii.crc_hqx``): about a microsecond per block of 20 samples.
"""

from __future__ import annotations

import random
import struct
from binascii import crc_hqx
from collections.abc import Iterator

from drivers.lbx import SYNC, TYPE_INFO, TYPE_SAMPLES
from simulators.lbx_device import LbxDevice, LbxSettings
from simulators.profiles import ProfilePlayer, segments

BLOCK = 20
"""Samples per block: the simulator's blocks at 2 kHz (100 frames a second)."""
T0_US = 1_000_000
WAVEFORM_BLOCKS = 600
"""12,000 samples of the simulator's waveform, reused in turn."""

_HEAD = struct.Struct("<BHHIIBB")
_CRC = struct.Struct("<H")


def waveform() -> tuple[bytes, list[bytes]]:
    """The simulator's INFO frame and ``WAVEFORM_BLOCKS`` blocks' sample bytes."""
    rng = random.Random(7)
    settings = LbxSettings(rate_hz=2000.0, block_samples=BLOCK)
    device = LbxDevice(
        settings, ProfilePlayer(segments("fatigue", rng, cycles=1000, hold_s=0.5)), rng
    )
    info = b""
    blocks: list[bytes] = []
    while len(blocks) < WAVEFORM_BLOCKS:
        for e in device.step():
            kind = e.data[2] if e.data[:2] == SYNC else None
            if kind == TYPE_INFO and not info:
                info = e.data
            elif kind == TYPE_SAMPLES:
                blocks.append(e.data[5 + 12 : -2])
    return info, blocks


def block_frame(seq: int, t0_us: int, period_us: int, samples: bytes) -> bytes:
    """A SAMPLES frame of ``BLOCK`` samples (3 channels) around ``samples``' bytes."""
    body = _HEAD.pack(TYPE_SAMPLES, 12 + len(samples), seq, t0_us, period_us, 3, BLOCK) + samples
    return SYNC + body + _CRC.pack(crc_hqx(body, 0xFFFF))


def blocks(n: int, *, period_us: int = 500, offset: int = 0) -> Iterator[bytes]:
    """``n`` consecutive SAMPLES frames from device time ``T0_US`` (sequence wrapping)."""
    _, waves = waveform()
    for k in range(n):
        t0 = (T0_US + k * BLOCK * period_us) & 0xFFFFFFFF
        yield block_frame(k & 0xFFFF, t0, period_us, waves[(k + offset) % WAVEFORM_BLOCKS])
