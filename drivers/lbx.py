"""LBX v1: the cath-lab interface box's binary frame stream, sans-IO.

``LbxParser.feed(chunk, rx_time_ns)`` returns the records completed by the bytes
so far and never raises on input; every frame it drops is counted by reason (see
``DROP_REASONS``).

Framing follows the spec's hunt exactly: find SYNC1 SYNC2, bound LEN, check the
CRC (``binascii.crc_hqx`` is CRC-16/CCITT-FALSE given init 0xFFFF, computed in C),
and after a bad frame resume at the byte after its SYNC1, so a real frame hidden
inside the bad bytes is still found. A SAMPLES block is unpacked with one
``struct`` call and scaled one channel column at a time, so the per-value Python
work is one multiply-add in a list comprehension; the block goes on as one record
of columns (``SampleBlock``), never a record per sample.

Raw values are only ever recorded with the scaling the device declared (INFO) or
the operator configured (a channel map): a block that arrives before either is
held for up to ``hold_ns`` of receive time, then dropped as ``no_info``.
"""

from __future__ import annotations

import functools
import math
import struct
from binascii import crc_hqx
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Final, NamedTuple

from drivers.records import DeviceInfo, Event, Record, SampleBlock, resolution_text
from drivers.units import KPA_PER_UNIT

SYNC: Final = b"\xa5\x5a"
MAX_PAYLOAD: Final = 1024
HEADER: Final = 5
"""SYNC1 SYNC2 TYPE LEN(2)."""

TYPE_INFO: Final = 0x01
TYPE_SAMPLES: Final = 0x02
TYPE_EVENT: Final = 0x03
TYPE_HEARTBEAT: Final = 0x04

HOLD_NS: Final = 2_000_000_000
"""How long blocks wait for a first INFO when no channel map is configured."""

DROP_REASONS: Final = (
    "crc",  # CRC mismatch (the hunt resumes after that frame's SYNC1)
    "too_long",  # LEN over 1024
    "bad_length",  # good CRC, but the payload's length does not fit its type
    "bad_info",  # good CRC, but an INFO that cannot be used (no usable channel)
    "nch_mismatch",  # a SAMPLES block whose nch differs from the INFO's
    "no_info",  # a SAMPLES block that could not be scaled: no INFO within the hold time
    "unknown_type",  # good CRC, type this driver does not know (newer firmware)
    "garbage_bytes",  # bytes outside any frame (counted in bytes, not frames)
)

KIND_NAMES: Final = {1: "pressure", 2: "volume", 3: "ibp", 4: "temperature"}
UNIT_NAMES: Final = {1: "kPa", 2: "mmHg", 3: "mL", 4: "atm", 5: "C"}
EVENT_CODES: Final = {1: "mark", 2: "fluoro_on", 3: "fluoro_off", 4: "zero", 5: "channel_fault"}

_MMHG_PER_KPA = 1 / KPA_PER_UNIT["MMHG"]
# kind -> (schema field, {device unit -> exact factor to the field's unit}).
# fmt: off
_FIELDS: Final[dict[str, tuple[str, dict[str, Fraction]]]] = {
    "pressure": ("pressure_kpa", {"kPa": Fraction(1), "mmHg": KPA_PER_UNIT["MMHG"],
                                  "atm": KPA_PER_UNIT["ATM"]}),
    "volume": ("volume_ml", {"mL": Fraction(1)}),
    "ibp": ("ibp_mmhg", {"mmHg": Fraction(1), "kPa": _MMHG_PER_KPA,
                         "atm": KPA_PER_UNIT["ATM"] * _MMHG_PER_KPA}),
    "temperature": ("temp_c", {"C": Fraction(1)}),
}
# fmt: on

_INFO_HEAD = struct.Struct("<B16s16s8sB")
_INFO_CHANNEL = struct.Struct("<BBBdd8s")
_SAMPLES_HEAD = struct.Struct("<HIIBB")
_EVENT = struct.Struct("<IBBi")
_HEARTBEAT = struct.Struct("<II")
_U16 = struct.Struct("<H")
_T_MASK: Final = (1 << 32) - 1
_SEQ_MOD: Final = 1 << 16


@functools.cache
def _raw_values(count: int) -> Callable[[bytes, int], tuple[int, ...]]:
    """The unpacker for ``count`` little-endian i32 (at most 253 fit in a frame)."""
    return struct.Struct(f"<{count}i").unpack_from


class Channel(NamedTuple):
    """One analogue channel: engineering value = raw x scale + offset, in ``unit``."""

    ch_id: int
    kind: str
    """``pressure``, ``volume``, ``ibp``, ``temperature``, or ``kind<n>`` if unknown."""
    unit: str
    """``kPa``, ``mmHg``, ``mL``, ``atm``, ``C``, or ``unit<n>`` if unknown."""
    scale: float
    offset: float
    name: str = ""


BlockDecoder = Callable[[tuple[int, ...]], tuple[list[float], ...]]
"""A block's raw values (interleaved by channel) -> one column of values per field."""


class _Layout(NamedTuple):
    """How to turn a block's raw values into schema fields, fixed per INFO."""

    nch: int
    fields: tuple[str, ...]
    columns: tuple[tuple[int, float, float, int, int], ...]
    """Per recorded channel: column index, scale, offset, factor num, factor den."""
    decode: BlockDecoder


def _block_decoder(nch: int, columns: list[tuple[int, float, float, int, int]]) -> BlockDecoder:
    """One list comprehension per field, generated per layout, that builds a block's columns.

    Like the line-protocol encoder: the scalings are fixed per INFO, so each value
    costs one multiply-add, with no per-value lookups and no per-sample objects (a
    block stays columns down to the sinks). Values stay the spec's formula in f64:
    ``raw * scale + offset``, then an exact unit factor as ``* num / den``.
    """
    items = []
    for index, scale, offset, num, den in columns:
        # Constants go into the source as exact literals (repr round-trips a float).
        # "+ 0.0" is left out only where it cannot matter: raw * scale is -0.0 only
        # for a negative scale, and adding +0.0 would turn that into 0.0.
        value = f"r * ({scale!r})"
        if offset != 0.0 or math.copysign(1.0, offset) < 0 or math.copysign(1.0, scale) < 0:
            value = f"{value} + ({offset!r})"
        if (num, den) != (1, 1):
            value = f"({value}) * {num} / {den}"
        source = f"raw[{index}::{nch}]" if nch > 1 else "raw"
        items.append(f"[{value} for r in {source}]")
    source = f"def decode(raw):\n    return ({''.join(item + ', ' for item in items)})\n"
    env: dict[str, BlockDecoder] = {}
    exec(source, env)  # noqa: S102 - source built above from numbers and fixed names only
    return env["decode"]


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, xorout 0)."""
    return crc_hqx(data, 0xFFFF)


def frame(frame_type: int, payload: bytes) -> bytes:
    """A complete frame of ``frame_type`` around ``payload``, CRC included."""
    body = bytes((frame_type,)) + _U16.pack(len(payload)) + payload
    return SYNC + body + _U16.pack(crc16(body))


def layout_for(channels: Sequence[Channel]) -> tuple[_Layout, list[str]]:
    """The recording layout for ``channels``, and why any channel is left out.

    A channel is recorded only if its kind and unit map onto a schema field; a
    second channel of a kind gets a numbered field (``ibp2_mmhg``).
    """
    fields: list[str] = []
    columns: list[tuple[int, float, float, int, int]] = []
    skipped: list[str] = []
    for index, ch in enumerate(channels):
        spec = _FIELDS.get(ch.kind)
        factor = spec[1].get(ch.unit) if spec else None
        if spec is None or factor is None:
            skipped.append(f"channel {ch.ch_id}: {ch.kind} in {ch.unit} has no schema field")
            continue
        if not (math.isfinite(ch.scale) and math.isfinite(ch.offset)):
            skipped.append(f"channel {ch.ch_id}: scale or offset is not finite")
            continue
        field = spec[0]
        if field in fields:
            quantity, _, unit = field.rpartition("_")
            n = 2
            while f"{quantity}{n}_{unit}" in fields:
                n += 1
            field = f"{quantity}{n}_{unit}"
        fields.append(field)
        columns.append((index, ch.scale, ch.offset, factor.numerator, factor.denominator))
    decode = _block_decoder(len(channels), columns)
    return _Layout(len(channels), tuple(fields), tuple(columns), decode), skipped


def parse_info(payload: bytes) -> tuple[DeviceInfo, list[Channel]] | None:
    """An INFO payload's identity and channels, or None if its length is wrong."""
    if len(payload) < _INFO_HEAD.size:
        return None
    _ver, serial, model, firmware, nch = _INFO_HEAD.unpack_from(payload)
    if len(payload) != _INFO_HEAD.size + nch * _INFO_CHANNEL.size:
        return None
    channels = []
    for i in range(nch):
        ch_id, kind, unit, scale, offset, name = _INFO_CHANNEL.unpack_from(
            payload, _INFO_HEAD.size + i * _INFO_CHANNEL.size
        )
        channels.append(
            Channel(
                ch_id,
                KIND_NAMES.get(kind, f"kind{kind}"),
                UNIT_NAMES.get(unit, f"unit{unit}"),
                scale,
                offset,
                _text(name),
            )
        )
    described = ",".join(f"{c.name or c.ch_id}:{c.kind}:{c.unit}" for c in channels)
    info = DeviceInfo(_text(model), _text(serial), _text(firmware), 0, {"channels": described})
    return info, channels


def _text(raw: bytes) -> str:
    """A NUL-padded ASCII field; anything unprintable becomes '?' rather than an error."""
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    return "".join(c if " " <= c <= "~" else "?" for c in text)


class LbxParser:
    """Incremental LBX v1 parser. One instance per port; not thread-safe."""

    allowed_writes: Final[frozenset[bytes]] = frozenset()  # streaming: pvlog sends nothing

    def __init__(
        self, channel_map: Sequence[Channel] | None = None, *, hold_ns: int = HOLD_NS
    ) -> None:
        self._buf = b""
        self._layout: _Layout | None = None
        if channel_map:
            self._layout, skipped = layout_for(channel_map)
            if not self._layout.fields:
                raise ValueError("; ".join(skipped) or "the channel map records nothing")
        self._hold_ns = hold_ns
        self._held: deque[tuple[bytes, int]] = deque()
        self._next_block: int | None = None
        self._next_t0 = 0
        self._uptime_s: int | None = None
        self.channels: list[Channel] = list(channel_map or ())
        self.skipped_channels: list[str] = []
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.accepted = 0
        self.boots = 0
        """Restarts seen (uptime went back): the device clock restarted."""

    def __getstate__(self) -> dict[str, object]:
        """For a journal's checkpoint: the layout's generated decoder is nothing pickle can
        name, so the layout is made again from the channels on load."""
        return {**self.__dict__, "_layout": self._layout is not None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._layout = layout_for(self.channels)[0] if state["_layout"] else None

    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Record]:
        """Parse ``chunk``; return the samples, events and identities it completed."""
        buf = self._buf + chunk if self._buf else chunk
        out: list[Record] = []
        pos = 0
        n = len(buf)
        dropped = self.dropped
        view = memoryview(buf)
        while True:
            start = buf.find(SYNC, pos)
            if start < 0:
                # Keep a trailing SYNC1: its SYNC2 may be in the next chunk.
                keep = n - 1 if n > pos and buf[-1] == 0xA5 else n
                dropped["garbage_bytes"] += keep - pos
                pos = keep
                break
            dropped["garbage_bytes"] += start - pos
            if n - start < HEADER:
                pos = start
                break
            length = buf[start + 3] | buf[start + 4] << 8
            if length > MAX_PAYLOAD:
                dropped["too_long"] += 1
                pos = start + 1
                continue
            end = start + HEADER + length + 2
            if end > n:
                pos = start
                break
            if crc_hqx(view[start + 2 : end - 2], 0xFFFF) != (buf[end - 2] | buf[end - 1] << 8):
                dropped["crc"] += 1
                pos = start + 1
                continue
            self._frame(buf[start + 2], buf[start + HEADER : end - 2], rx_time_ns, out)
            pos = end
        view.release()
        self._buf = buf[pos:]
        if self._held:
            self._expire_held(rx_time_ns)
        return out

    def _frame(self, frame_type: int, payload: bytes, rx_time_ns: int, out: list[Record]) -> None:
        if frame_type == TYPE_SAMPLES:
            if self._layout is None:
                self._held.append((payload, rx_time_ns))
            else:
                self._samples(payload, rx_time_ns, out)
        elif frame_type == TYPE_EVENT:
            if len(payload) != _EVENT.size:
                self.dropped["bad_length"] += 1
                return
            t_us, code, ch, value = _EVENT.unpack(payload)
            name = EVENT_CODES.get(code, f"code{code}")
            out.append(Event(None, t_us, rx_time_ns, name, f"ch {ch}", float(value)))
            self.accepted += 1
        elif frame_type == TYPE_HEARTBEAT:
            if len(payload) != _HEARTBEAT.size:
                self.dropped["bad_length"] += 1
                return
            t_us, uptime = _HEARTBEAT.unpack(payload)
            if self._uptime_s is not None and uptime < self._uptime_s:
                # Uptime went backwards: the box restarted, its clock and block_seq with it.
                self._next_block = None
                self.boots += 1
                out.append(Event(None, t_us, rx_time_ns, "boot", f"uptime {uptime} s", None))
            self._uptime_s = uptime
            self.accepted += 1
        elif frame_type == TYPE_INFO:
            self._info(payload, rx_time_ns, out)
        else:
            self.dropped["unknown_type"] += 1

    def _info(self, payload: bytes, rx_time_ns: int, out: list[Record]) -> None:
        parsed = parse_info(payload)
        if parsed is None:
            self.dropped["bad_length"] += 1
            return
        info, channels = parsed
        if channels != self.channels or self._layout is None:
            layout, skipped = layout_for(channels)
            if not layout.fields:
                self.dropped["bad_info"] += 1
                return
            self._layout, self.channels, self.skipped_channels = layout, channels, skipped
        self.accepted += 1
        layout = self._layout
        assert layout is not None  # set above
        steps = zip(layout.fields, (abs(c[1]) * c[3] / c[4] for c in layout.columns), strict=True)
        extra = {**info.extra, "resolution": resolution_text(steps)}
        out.append(info._replace(rx_time_ns=rx_time_ns, extra=extra))
        while self._held:
            held, held_rx = self._held.popleft()
            self._samples(held, held_rx, out)

    def _expire_held(self, now_ns: int) -> None:
        while self._held and now_ns - self._held[0][1] > self._hold_ns:
            self._held.popleft()
            self.dropped["no_info"] += 1

    def _samples(self, payload: bytes, rx_time_ns: int, out: list[Record]) -> None:
        layout = self._layout
        assert layout is not None
        if len(payload) < _SAMPLES_HEAD.size:
            self.dropped["bad_length"] += 1
            return
        block_seq, t0, period, nch, nsamp = _SAMPLES_HEAD.unpack_from(payload)
        count = nch * nsamp
        if len(payload) != _SAMPLES_HEAD.size + 4 * count:
            self.dropped["bad_length"] += 1
            return
        if nch != layout.nch:
            self.dropped["nch_mismatch"] += 1
            return
        if not nsamp:
            self.accepted += 1
            return
        expected = self._next_block
        # A block_seq behind the expected one (a repeat, a restart) is no gap.
        if expected is not None and 0 < (block_seq - expected) % _SEQ_MOD < _SEQ_MOD // 2:
            out.append(self._gap(block_seq, t0, period, nsamp, rx_time_ns))
        self._next_block = (block_seq + 1) % _SEQ_MOD
        self._next_t0 = (t0 + nsamp * period) & _T_MASK
        raw = _raw_values(count)(payload, _SAMPLES_HEAD.size)
        end = t0 + nsamp * period
        times: Sequence[int] = range(t0, end, period) if period else [t0] * nsamp
        if end > _T_MASK:  # the device clock wraps inside this block
            times = [t & _T_MASK for t in times]
        out.append(SampleBlock(block_seq, times, rx_time_ns, layout.fields, layout.decode(raw), 0))
        self.accepted += 1

    def _gap(self, block_seq: int, t0: int, period: int, nsamp: int, rx_time_ns: int) -> Event:
        """A ``gap`` event for the blocks missing before this one, in samples.

        The count comes from the device clock when it agrees with the block count
        (blocks may differ in size); otherwise from the blocks times this block's size.
        """
        assert self._next_block is not None
        blocks = (block_seq - self._next_block) % _SEQ_MOD
        lost = blocks * nsamp
        if period:
            by_time, rest = divmod((t0 - self._next_t0) & _T_MASK, period)
            if not rest and blocks <= by_time <= blocks * 255:
                lost = by_time
        detail = f"block_seq {self._next_block} to {(block_seq - 1) % _SEQ_MOD} missing"
        return Event(block_seq, t0, rx_time_ns, "gap", detail, float(lost))
