"""The LBX parser with each block as its samples, one by one.

The spec's examples and the driver's rules are about samples; the daemon takes a
block whole (``SampleBlock``), and ``rows`` is the one way from one to the other,
so the tests of the rules hold for what the daemon gets.
"""

from __future__ import annotations

from drivers.lbx import LbxParser
from drivers.records import Row, rows


class LbxRows(LbxParser):
    def feed(self, chunk: bytes, rx_time_ns: int) -> list[Row]:  # type: ignore[override]
        return rows(super().feed(chunk, rx_time_ns))
