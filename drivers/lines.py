"""Any ASCII instrument, described in config: a line terminator, a regular expression
whose named groups are the readings, an optional checksum, an optional poll string.

Many lab instruments speak one line per reading: a gauge that streams
``+001.2345 bar``, a Druck-style indicator that answers ``*R\\r`` with ``1.01325,bar``.
A config describes the line and pvlog records it with no code. Sans-IO like every
driver: bytes in, records out; each line's sample carries the receive time of the read
that completed it (there is no device clock).

With a ``poll`` string the instrument is asked: that string is the driver's one
declared write, so the port layer refuses any other byte, and the poll loop
(``daemon.acquisition.polling``) sends it each cycle and waits for a line. Without
one, the instrument streams and pvlog never writes.

Drops, by reason, never a recorded value: ``checksum`` (the line's checksum is wrong
or missing), ``no_match`` (the line is not what the pattern describes), ``bad_value``
(a group is no number, NaN or infinite, or names a unit pvlog does not know: each
such unit is in ``unknown_units`` once, for the log), ``overlong`` (a line longer than
``MAX_LINE`` bytes: counted once, whether it came whole or in pieces, and skipped to
its terminator),
``unsolicited`` (a polled instrument spoke unasked), ``timeout`` (asked, no line in time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import isfinite
from typing import NamedTuple

from drivers.counted import CountedParser
from drivers.modbus import field_factor
from drivers.records import Record, Sample
from drivers.units import lab_unit

MAX_LINE = 1024
CHECKSUMS = ("none", "xor", "sum")
"""``xor``/``sum``: the line ends ``*HH``, the XOR (or the sum, modulo 256) of every
byte before the ``*`` (a leading ``$`` excluded), in hex: NMEA's rule, and its sum
variant."""


class Field(NamedTuple):
    """One named group of the pattern, and the field it becomes."""

    group: str
    field: str
    unit: str = ""
    """The reading's unit, fixed; or empty, with ``unit_group`` naming the group that
    carries it on each line (``1.01325,bar``)."""
    unit_group: str = ""
    scale: float = 1.0
    offset: float = 0.0


class LinesSpec(NamedTuple):
    """An instrument's line, as its config describes it."""

    pattern: str
    fields: Sequence[Field]
    terminator: bytes = b"\r\n"
    checksum: str = "none"
    poll: bytes = b""


def checksum_ok(line: bytes, rule: str) -> tuple[bool, bytes]:
    """Whether ``line`` passes ``rule``, and the line without its checksum."""
    if rule == "none":
        return True, line
    body, star, given = line.rpartition(b"*")
    if not star or len(given) != 2:
        return False, line
    data = body[1:] if body.startswith(b"$") else body
    if rule == "xor":
        value = 0
        for byte in data:
            value ^= byte
    else:
        value = sum(data) & 0xFF
    try:
        return int(given, 16) == value, body
    except ValueError:
        return False, line


class LinesParser(CountedParser):
    def __init__(self, spec: LinesSpec) -> None:
        if not spec.terminator:
            raise ValueError("terminator: at least one byte")
        if spec.checksum not in CHECKSUMS:
            raise ValueError(f"checksum: one of {', '.join(CHECKSUMS)}")
        self.spec = spec
        self.regex = re.compile(spec.pattern)
        groups = set(self.regex.groupindex)
        for f in spec.fields:
            for name in (f.group, f.unit_group):
                if name and name not in groups:
                    raise ValueError(f"group {name!r} is not in the pattern")
            if f.unit or not f.unit_group:
                field_factor(f.field, f.unit)
        self._said: set[str] = set()
        self.unknown_units: list[str] = []
        """Each unit a line named that pvlog does not know, once, in order: the daemon
        says it in the log (the lines themselves are ``bad_value`` drops)."""
        self.requests: tuple[bytes, ...] = (spec.poll,) if spec.poll else ()
        super().__init__(self.requests, ("checksum", "no_match", "bad_value", "overlong",
                                         "unsolicited", "timeout"))  # fmt: skip
        self._buf = bytearray()
        self._skipping = False
        self._seq = 0
        self._awaiting = False
        self.outcome: str | None = None
        self._answer: Sample | None = None

    # -- a polled instrument (``poll`` set) ---------------------------------------

    @property
    def awaiting(self) -> bool:
        return self._awaiting

    def sent(self, _index: int) -> None:
        self._awaiting = True
        self.outcome = None

    def timed_out(self) -> None:
        if self._awaiting:
            self._awaiting = False
            self._dropped["timeout"] += 1
            self.outcome = "timeout"

    def end_cycle(self) -> list[Record]:
        answer, self._answer = self._answer, None
        return [] if answer is None else [answer]

    # -- bytes in --------------------------------------------------------------------

    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Record]:
        self._buf += chunk
        out: list[Record] = []
        term = self.spec.terminator
        while True:
            end = self._buf.find(term)
            if end < 0:
                if len(self._buf) > MAX_LINE:
                    if not self._skipping:
                        self._count("overlong", bytes(self._buf))
                    self._skipping = True
                    del self._buf[: len(self._buf) - len(term) + 1]
                return out
            line = bytes(self._buf[:end])
            del self._buf[: end + len(term)]
            if self._skipping:  # the end of an overlong line, already counted
                self._skipping = False
                continue
            if len(line) > MAX_LINE:  # an over-long line that came whole in one read
                self._count("overlong", line)
                continue
            if not line.strip():
                continue  # an empty line (CR LF LF): nothing said, nothing wrong
            sample = self._line(line, rx_time_ns)
            if sample is None:
                continue
            if not self.requests:
                out.append(sample)
            elif self._awaiting:
                self._awaiting, self.outcome, self._answer = False, "ok", sample
            else:
                self._dropped["unsolicited"] += 1

    def _line(self, line: bytes, rx_time_ns: int) -> Sample | None:
        ok, body = checksum_ok(line, self.spec.checksum)
        if not ok:
            self._drop("checksum", line)
            return None
        found = self.regex.fullmatch(body.decode("latin-1").strip())
        if found is None:
            self._drop("no_match", line)
            return None
        values: dict[str, float] = {}
        for f in self.spec.fields:
            unit = found.group(f.unit_group) if f.unit_group else f.unit
            try:
                raw = float(found.group(f.group))
                factor = field_factor(f.field, unit)
            except (TypeError, ValueError):
                raw = float("nan")
                if f.unit_group and f.field == "pressure_kpa" and lab_unit(unit or "") is None:
                    self._unknown(unit or "")
            if not isfinite(raw):  # no number, "nan", "inf", or no such unit: no reading
                self._drop("bad_value", line)
                return None
            values[f.field] = (raw * f.scale + f.offset) * factor
        self._seq += 1
        return Sample(self._seq, None, rx_time_ns, values, 0)

    def _unknown(self, unit: str) -> None:
        if unit not in self._said:
            self._said.add(unit)
            self.unknown_units.append(unit)

    def _drop(self, reason: str, line: bytes) -> None:
        self._count(reason, line)
        if self._awaiting:  # the answer came, and was wrong: no use waiting on
            self._awaiting, self.outcome = False, reason
