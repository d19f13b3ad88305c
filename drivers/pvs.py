"""PVS v1: the bench inflation device's ASCII sentence stream, sans-IO.

``PvsParser.feed(chunk, rx_time_ns)`` takes whatever bytes the port delivered and
returns the records completed by them. It never raises on input: every sentence
it drops is counted in ``dropped`` under the reason (see ``DROP_REASONS``).

Sentences are found by splitting on LF, which runs in C over the whole chunk;
within a line the last ``$`` starts the sentence, so a truncated sentence is cut
off by the next one's ``$`` exactly as the spec's resync rule asks. Nothing is
buffered beyond the current partial sentence (at most 95 bytes), so junk without
line ends cannot grow memory.
"""

from __future__ import annotations

import re
from typing import Final

from drivers.records import DeviceInfo, Event, Record, Sample, resolution_text
from drivers.units import KPA_PER_UNIT, MILLI_TO_KPA

MAX_SENTENCE: Final = 96
"""Bytes from ``$`` to LF inclusive."""

FLAG_OVER_RANGE: Final = 0x01
FLAG_SENSOR_FAULT: Final = 0x02
FLAG_LOW_BATTERY: Final = 0x04
FLAG_ZERO: Final = 0x08

DROP_REASONS: Final = (
    "checksum",  # checksum present but wrong
    "no_checksum",  # sentence does not end in *HH CR LF
    "too_long",  # over 96 bytes
    "truncated",  # a sentence cut off by the next `$`
    "not_ascii",  # a byte over 0x7F inside a sentence
    "bad_field",  # checksum right, but a field does not parse
    "unknown_type",  # well-formed, type this driver does not know (newer firmware)
    "garbage_bytes",  # bytes outside any sentence (counted in bytes, not sentences)
)

# Possessive quantifiers (``+`` after a repeat): a field that fails to match never
# backtracks into its digits, which makes the common (valid) case faster too.
_PVS_BODY = (
    rb"PVS,(\d{1,5}+),(\d{1,10}+),(-?+\d{1,9}+)(?:\.(\d{1,3}+))?+,"
    rb"(ATM|BAR|PSI|KPA|MMHG),(-?+\d{1,9}+(?:\.\d{1,3}+)?+),([0-9A-Fa-f]{2})"
)
# Whole sample sentences, found in one C pass over a chunk (see PvsParser._fast).
_PVS_SENTENCE = re.compile(rb"\$(" + _PVS_BODY + rb")\*([0-9A-Fa-f]{2})\r\n")
_HEX_VALUE = {b"%02X" % i: i for i in range(256)} | {b"%02x" % i: i for i in range(256)}
_UNIT_FACTOR = {unit.encode(): factor for unit, factor in MILLI_TO_KPA.items()}
_PAD = (1000, 100, 10, 1)
"""Thousandths per unit of the last digit, by the number of decimals given."""
_new_sample = tuple.__new__  # skips NamedTuple.__new__'s Python frame on the hot path
_PVEV = re.compile(rb"PVEV,(\d{1,5}),(\d{1,10}),([A-Z0-9_]{1,16}),([ -~]*)")
_NUM = rb"-?\d{1,9}(?:\.\d{1,6})?"
_PVID = re.compile(
    # Identity fields are printable ASCII without commas: [!-+] and [--~] skip ','.
    rb"PVID,([!-+\--~]{1,24}),([!-+\--~]{1,24}),([!-+\--~]{1,16}),(ATM|BAR|PSI|KPA|MMHG),("
    + _NUM
    + rb"),("
    + _NUM
    + rb"),("
    + _NUM
    + rb"),(\d{1,4})"
)
_SEQ_MOD: Final = 1 << 16
_T_MOD: Final = 1 << 32


def checksum(body: bytes) -> int:
    """XOR of every byte of ``body``, at C speed.

    The body is read as one integer and folded onto its low byte by shift-XORs:
    the shifts 8, 16, ..., 512 sum to every multiple of 8 below 1024 exactly once,
    so bit i of the result is the XOR of bit i of every byte of a body up to 128
    bytes (a sentence is at most 96). Seven big-int operations instead of a
    Python loop over ~50 bytes.
    """
    x = int.from_bytes(body, "little")
    x ^= x >> 512
    x ^= x >> 256
    x ^= x >> 128
    x ^= x >> 64
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    return x & 0xFF


def sentence(body: str) -> bytes:
    """A complete sentence for ``body`` (the text between ``$`` and ``*``)."""
    raw = body.encode("ascii")
    return b"$%s*%02X\r\n" % (raw, checksum(raw))


class PvsParser:
    """Incremental PVS v1 parser. One instance per port; not thread-safe."""

    allowed_writes: Final[frozenset[bytes]] = frozenset()  # streaming: pvlog sends nothing

    def __init__(self) -> None:
        self._partial = b""
        # The partial sentence was already dropped as too long: the rest of its
        # line is its tail, not separate garbage.
        self._discarding = False
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.accepted = 0
        self._next_seq: int | None = None
        """The seq the next sample should carry; None after a boot (no gap to report)."""
        self.boots = 0
        """Boot events seen: the device clock restarted."""

    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Record]:
        """Parse ``chunk``; return the samples, events and identities it completed."""
        buf = self._partial + chunk if self._partial else chunk
        end = buf.rfind(b"\n") + 1
        out: list[Record] = []
        if end:
            complete = buf[:end] if end < len(buf) else buf
            if self._discarding or not self._fast(complete, rx_time_ns, out):
                for line in complete[:-1].split(b"\n"):
                    self._line(line, rx_time_ns, out)
        self._keep_partial(buf[end:])
        return out

    def _fast(self, complete: bytes, rx_time_ns: int, out: list[Record]) -> bool:
        """Decode ``complete`` if it is nothing but sample sentences; else do nothing.

        This is the common case, and it is decoded with one regex pass and one
        prefix-XOR pass over the chunk, both in C. The counts prove the matches
        tile the chunk: n sentences, each holding exactly one ``$`` (its first
        byte) and one LF (its last), with every LF but the last followed by ``$``.
        Anything else (an identity, an event, a fault) goes to the line-by-line
        path, which is the reference: both paths give the same records.
        """
        found = _PVS_SENTENCE.findall(complete)
        n = len(found)
        if (
            not n
            or complete[0] != 0x24  # '$'
            or complete.count(b"\n") != n
            or complete.count(b"$") != n
            or complete.count(b"\n$") != n - 1
        ):
            return False
        prefix = _prefix_xor(complete)
        hex_value, factors, new, append = _HEX_VALUE, _UNIT_FACTOR, _new_sample, out.append
        pad = _PAD
        accepted = 0
        pos = 0
        next_seq = self._next_seq
        for body, seq_b, t_b, whole, frac, unit_b, vol_b, flags_b, cs_b in found:
            end = pos + len(body)
            if prefix[end] ^ prefix[pos] != hex_value[cs_b]:
                self.dropped["checksum"] += 1
            else:
                seq = int(seq_b)
                t_us = int(t_b)
                if seq >= _SEQ_MOD or t_us >= _T_MOD:
                    self.dropped["bad_field"] += 1
                else:
                    flags = hex_value[flags_b]
                    if flags & FLAG_SENSOR_FAULT:
                        values = {"volume_ml": float(vol_b)}
                    else:
                        # Thousandths, sign included: "-0.81" is int("-081") * 10.
                        milli = int(whole + frac) * pad[len(frac)]
                        num, den = factors[unit_b]
                        values = {"pressure_kpa": milli * num / den, "volume_ml": float(vol_b)}
                    # A seq behind the expected one (a repeat, a restart) is no gap.
                    if (
                        seq != next_seq
                        and next_seq is not None
                        and (seq - next_seq) % 65536 < 32768
                    ):
                        append(self._gap(next_seq, seq, t_us, rx_time_ns))
                    next_seq = (seq + 1) % _SEQ_MOD
                    append(new(Sample, (seq, t_us, rx_time_ns, values, flags)))
                    accepted += 1
            pos = end + 6  # past '*', two hex digits, CR and LF: the next '$'
        self._next_seq = next_seq
        self.accepted += accepted
        return True

    @staticmethod
    def _gap(expected: int, seq: int, t_us: int, rx_time_ns: int) -> Event:
        """The samples missing before ``seq``, as a ``gap`` event placed just before it."""
        lost = (seq - expected) % _SEQ_MOD
        detail = f"seq {expected} to {(seq - 1) % _SEQ_MOD} missing"
        return Event(seq, t_us, rx_time_ns, "gap", detail, float(lost))

    def _keep_partial(self, tail: bytes) -> None:
        """Keep the unfinished sentence at the end of a chunk, bounded."""
        start = tail.rfind(b"$")
        if start < 0:
            if not self._discarding:
                self.dropped["garbage_bytes"] += len(tail)
            self._partial = b""
            return
        if start:
            self._drop_prefix(tail[:start])
            tail = tail[start:]
        self._discarding = False
        if len(tail) >= MAX_SENTENCE:
            self.dropped["too_long"] += 1
            self._partial = b""
            self._discarding = True
        else:
            self._partial = tail

    def _drop_prefix(self, prefix: bytes) -> None:
        """Account for bytes before a line's last ``$``: cut-off sentences and junk."""
        starts = prefix.count(b"$")
        self.dropped["truncated"] += starts
        lead = prefix.find(b"$") if starts else len(prefix)
        if lead and not self._discarding:
            self.dropped["garbage_bytes"] += lead
        self._discarding = False

    def _line(self, line: bytes, rx_time_ns: int, out: list[Record]) -> None:
        """The reference path: one line, every rule checked in turn, drops counted."""
        start = line.rfind(b"$")
        if start:
            if start < 0:
                if not self._discarding:
                    self.dropped["garbage_bytes"] += len(line) + 1
                self._discarding = False
                return
            self._drop_prefix(line[:start])
            line = line[start:]
        self._discarding = False
        # line is "$" body "*" HH "\r"; the LF was consumed by split.
        if len(line) >= MAX_SENTENCE:
            self.dropped["too_long"] += 1
            return
        if len(line) < 5 or line[-4] != 0x2A or line[-1] != 0x0D:  # '*', CR
            self.dropped["no_checksum"] += 1
            return
        if not line.isascii():
            self.dropped["not_ascii"] += 1
            return
        cs = _HEX_VALUE.get(line[-3:-1])
        if cs is None:
            self.dropped["no_checksum"] += 1
            return
        body = line[1:-4]
        if checksum(body) != cs:
            self.dropped["checksum"] += 1
            return
        record: Record | None
        if body.startswith(b"PVS,"):
            # A valid sample line is exactly what the fast path decodes.
            if not self._fast(line + b"\n", rx_time_ns, out):
                self.dropped["bad_field"] += 1
            return
        if body.startswith(b"PVEV,"):
            record = self._event(body, rx_time_ns)
            if record is not None and record.code == "boot":
                self._next_seq = None
                self.boots += 1
        elif body.startswith(b"PVID,"):
            record = self._identity(body, rx_time_ns)
        else:
            self.dropped["unknown_type"] += 1
            return
        if record is None:
            self.dropped["bad_field"] += 1
        else:
            self.accepted += 1
            out.append(record)

    @staticmethod
    def _event(body: bytes, rx_time_ns: int) -> Event | None:
        m = _PVEV.fullmatch(body)
        if m is None:
            return None
        seq_b, t_b, code, detail = m.groups()
        seq, t_us = int(seq_b), int(t_b)
        if seq >= _SEQ_MOD or t_us >= _T_MOD:
            return None
        return Event(seq, t_us, rx_time_ns, code.decode().lower(), detail.decode(), None)

    @staticmethod
    def _identity(body: bytes, rx_time_ns: int) -> DeviceInfo | None:
        m = _PVID.fullmatch(body)
        if m is None:
            return None
        model, serial, firmware, unit, p_min, p_max, v_max, rate = (g.decode() for g in m.groups())
        extra = {"p_unit": unit, "p_min": p_min, "p_max": p_max, "v_max_ml": v_max, "rate_hz": rate}
        # A reading has at most three decimals, in the device's unit.
        steps = (("pressure_kpa", float(KPA_PER_UNIT[unit]) / 1000), ("volume_ml", 0.001))
        extra["resolution"] = resolution_text(steps)
        return DeviceInfo(model, serial, firmware, rx_time_ns, extra)


def _prefix_xor(buf: bytes) -> bytes:
    """Byte i of the result is the XOR of ``buf[0..i]``, computed in C.

    The XOR of any span ``buf[a..b]`` is then ``p[b] ^ p[a-1]``: O(1) per sentence
    after O(n log n) big-int work for the whole chunk (shift-XOR doubling).
    """
    n = len(buf)
    q = int.from_bytes(buf, "little")
    shift = 8
    limit = 8 * n
    while shift < limit:
        q ^= q << shift
        shift <<= 1
    return (q & ((1 << limit) - 1)).to_bytes(n, "little")
