"""The live stream's samples message: a batch of samples as index-aligned JSON arrays.

``json.dumps`` of the batch spent most of its time writing floats: the shortest text
of a waveform value such as 121590 x 0.01 runs to 17 digits. A device repeats its
quantised readings, so each value's text is remembered (as the line-protocol encoder
does) and the arrays are joined from the texts of the chunk's columns. The result
is exactly what ``json.dumps`` of the same dict gives, a missing reading (NaN)
written as null (the unit tests compare the two, byte for byte).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from itertools import chain, groupby, repeat

from daemon.pipeline import Samples

TEXT_CACHE_SIZE = 50_000
UNITS = {"pressure_kpa": "kPa", "volume_ml": "mL", "ibp_mmhg": "mmHg", "temp_c": "C"}


class SampleBatchEncoder:
    """Encodes one device's batches; remembers float texts across them."""

    def __init__(self) -> None:
        self._texts: dict[float, str] = {}

    def _text(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "null"  # no valid reading; JSON has no NaN
        text = self._texts.get(value)
        if text is None:
            if len(self._texts) >= TEXT_CACHE_SIZE:
                self._texts.clear()
            text = repr(value)
            if value:  # 0.0 and -0.0 are equal keys with different texts
                self._texts[value] = text
        return text

    def _floats(self, column: Iterable[float]) -> str:
        # Zero is not remembered (see _text), and is common (no volume before an
        # inflation): its repr is made here, without a call.
        get, text = self._texts.get, self._text
        return ", ".join([get(v) or (text(v) if v else repr(v)) for v in column])

    def encode(self, device: str, session: str, samples: Samples) -> bytes:
        fields = sorted(samples.fields)
        named = [(f, samples.column(f) or []) for f in fields]
        head = json.dumps({"device": device, "session": session,
                           "units": {f: UNITS.get(f, "") for f in fields}})  # fmt: skip
        parts = [
            head[:-1],
            ', "time_ns": [', ", ".join(map(str, samples.time_ns)),
            '], "seq": [', _ints(samples.seq),
            '], "flags": [', _ints(samples.flags),
            '], "values": {',
            ", ".join([f"{json.dumps(f)}: [{self._floats(c)}]" for f, c in named]),
            "}}",
        ]  # fmt: skip
        return "".join(parts).encode()


def _ints(column: list[int]) -> str:
    """The texts of a column of ints that come in runs (a block's seq, flags): one
    ``str`` a run."""
    return ", ".join(
        chain.from_iterable(repeat(str(value), len(list(run))) for value, run in groupby(column))
    )
