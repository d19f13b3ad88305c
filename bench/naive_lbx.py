"""A naive LBX decoder: a byte-at-a-time state machine with a per-byte CRC.

This is how a first gateway is usually written, and it is two things here: the
benchmark's baseline (run in the same process as ``drivers.lbx``) and, being
written the plain way and independently, the fuzz tests' reference for which
samples a stream holds. It follows the spec's semantics but keeps no hold buffer:
blocks before the first INFO are only decoded when a channel map is given.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from drivers.lbx import Channel, layout_for, parse_info

NaiveSample = tuple[int, int, dict[str, float]]


def crc16_per_byte(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class NaiveLbx:
    def __init__(self, channel_map: Sequence[Channel] | None = None) -> None:
        self.buf = bytearray()
        self.layout = layout_for(channel_map)[0] if channel_map else None
        self.crc_errors = 0

    def feed(self, chunk: bytes) -> list[NaiveSample]:
        out: list[NaiveSample] = []
        self.buf += chunk
        i = 0
        while True:
            # Hunt one byte at a time.
            while i < len(self.buf) - 1 and not (self.buf[i] == 0xA5 and self.buf[i + 1] == 0x5A):
                i += 1
            if len(self.buf) - i < 5:
                break
            length = self.buf[i + 3] + 256 * self.buf[i + 4]
            if length > 1024:
                i += 1
                continue
            if len(self.buf) - i < 7 + length:
                break
            body = bytes(self.buf[i + 2 : i + 5 + length])
            crc = self.buf[i + 5 + length] + 256 * self.buf[i + 6 + length]
            if crc16_per_byte(body) != crc:
                self.crc_errors += 1
                i += 1
                continue
            self.frame(body[0], body[3:], out)
            i += 7 + length
        del self.buf[:i]
        return out

    def frame(self, frame_type: int, payload: bytes, out: list[NaiveSample]) -> None:
        if frame_type == 1:
            parsed = parse_info(payload)
            if parsed is not None:
                layout = layout_for(parsed[1])[0]
                if layout.fields:
                    self.layout = layout
        elif frame_type == 2 and self.layout is not None and len(payload) >= 12:
            seq, t0, period, nch, nsamp = struct.unpack("<HIIBB", payload[:12])
            if nch != self.layout.nch or len(payload) != 12 + 4 * nch * nsamp:
                return
            for k in range(nsamp):
                values = {}
                for field, (index, scale, offset, num, den) in zip(
                    self.layout.fields, self.layout.columns, strict=True
                ):
                    (raw,) = struct.unpack("<i", payload[12 + 4 * (k * nch + index) :][:4])
                    value = raw * scale + offset
                    values[field] = value if num == den == 1 else value * num / den
                out.append((seq, (t0 + k * period) % (1 << 32), values))
