"""The live stream's samples message is byte for byte what ``json.dumps`` makes of the
batch dict (the format ``daemon/mqtt/live.py`` documents), whatever the values."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from daemon.mqtt.sample_batch import UNITS, SampleBatchEncoder
from daemon.pipeline import Samples, StampedSample

FIELDS = ("pressure_kpa", "volume_ml", "ibp_mmhg", "temp_c")
values = st.dictionaries(
    st.sampled_from(FIELDS), st.floats(allow_nan=False, allow_infinity=False), min_size=1
)
samples = st.lists(
    st.builds(
        StampedSample,
        st.integers(0, 2**63),
        st.integers(0, 2**63),
        st.integers(0, 2**32),
        values,
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=30,
)


def reference(device: str, session: str, batch: list[StampedSample]) -> bytes:
    fields = sorted({k for s in batch for k in s.values})
    doc = {
        "device": device,
        "session": session,
        "units": {f: UNITS.get(f, "") for f in fields},
        "time_ns": [s.time_ns for s in batch],
        "seq": [s.seq for s in batch],
        "flags": [s.flags for s in batch],
        "values": {f: [s.values.get(f) for s in batch] for f in fields},
    }
    return json.dumps(doc).encode()


@given(st.lists(samples, min_size=1, max_size=4), st.text(max_size=8))
def test_each_batch_is_what_json_dumps_writes(
    batches: list[list[StampedSample]], name: str
) -> None:
    encoder = SampleBatchEncoder()  # one per device: its remembered texts carry over
    for batch in batches:
        assert encoder.encode(f"dev{name}", "s\u00e9", Samples.of(batch)) == reference(
            f"dev{name}", "s\u00e9", batch
        )


def test_a_repeated_value_and_signed_zero_keep_their_text() -> None:
    encoder = SampleBatchEncoder()
    batch = [
        StampedSample(i, i, i, {"volume_ml": v}, 0) for i, v in enumerate([0.0, -0.0, 0.1, 0.1])
    ]
    doc = json.loads(encoder.encode("d", "s", Samples.of(batch)))
    assert doc["values"]["volume_ml"] == [0.0, -0.0, 0.1, 0.1]
    assert b"[0.0, -0.0, 0.1, 0.1]" in encoder.encode("d", "s", Samples.of(batch))
