"""A plain reading of the PVS spec, for the fuzzers (tests/unit/test_pvs_fuzz.py and
bench/bench_fuzz.py): per-byte XOR, a regular expression, Fraction arithmetic, one line
at a time; it shares nothing with the driver's fast paths but the unit factors.
"""

from __future__ import annotations

import re
from fractions import Fraction

from drivers.pvs import MAX_SENTENCE
from drivers.units import KPA_PER_UNIT

_NUM3 = r"-?\d{1,9}(\.\d{1,3})?"
_ORACLE_PVS = re.compile(
    rf"PVS,(\d{{1,5}}),(\d{{1,10}}),({_NUM3}),(ATM|BAR|PSI|KPA|MMHG),({_NUM3}),([0-9A-Fa-f]{{2}})"
)


def oracle_samples(stream: bytes) -> list[tuple[int, int, dict[str, float], int]]:
    out = []
    for raw in stream.split(b"\n")[:-1]:
        if b"$" not in raw:
            continue
        line = raw[raw.rindex(b"$") :] + b"\n"
        if len(line) > MAX_SENTENCE or not line.endswith(b"\r\n") or len(line) < 6:
            continue
        if line[-5:-4] != b"*":
            continue
        body, cs = line[1:-5], line[-4:-2]
        try:
            text = body.decode("ascii")
            want = int(cs.decode("ascii"), 16)
        except (UnicodeDecodeError, ValueError):
            continue
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", cs.decode()):
            continue
        x = 0
        for b in body:
            x ^= b
        if x != want:
            continue
        m = _ORACLE_PVS.fullmatch(text)
        if m is None:
            continue
        seq, t, flags = int(m.group(1)), int(m.group(2)), int(m.group(8), 16)
        if seq > 65535 or t > 2**32 - 1:
            continue
        values = {"volume_ml": float(m.group(6))}
        if not flags & 2:
            values["pressure_kpa"] = float(Fraction(m.group(3)) * KPA_PER_UNIT[m.group(5)])
        out.append((seq, t, values, flags))
    return out
