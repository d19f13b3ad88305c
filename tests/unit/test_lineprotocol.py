"""Our encoder against influxdb-client's Point: the same bytes for the same records."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from daemon.influx.lineprotocol import SampleLines, encode_line, series_prefix


def point_line(measurement: str, tags: dict[str, str], fields: dict[str, object], t: int) -> str:
    p = Point(measurement)
    for k, v in tags.items():
        p.tag(k, v)
    for k, v in fields.items():
        p.field(k, v)
    return str(p.time(t, WritePrecision.NS).to_line_protocol())


tag_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12
)
specials = st.sampled_from(
    [0.0, -0.0, 1.0, 100.0, 1e16, 1e-7, 1.5e300, math.nan, math.inf, -math.inf, 1250.857125]
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), specials)
channels = st.sampled_from(["pressure_kpa", "volume_ml", "ibp_mmhg", "temp_c", "odd key,=x"])


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["bench", "rig", "lot", "a b", "x,y", "k=v"]), tag_text),
    st.dictionaries(channels, floats, min_size=1, max_size=4),
    st.integers(0, 65535),
    st.integers(0, 255),
    st.integers(0, 2**62),
)
def test_sample_lines_match_point(
    tags: dict[str, str], values: dict[str, float], seq: int, flags: int, t: int
) -> None:
    tags = {**tags, "device": "inflator1", "session": "s 1,x=y\\"}
    lines = SampleLines(series_prefix("pv_sample", tags))
    ours = lines.encode(values, seq, flags, t)
    assert ours == point_line("pv_sample", tags, {**values, "seq": seq, "flags": flags}, t)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(channels, min_size=1, max_size=4, unique=True),
    st.data(),
)
def test_columns_encode_as_the_samples_one_by_one(fields: list[str], data: st.DataObject) -> None:
    """The chunk path's encoder: a NaN is a missing reading, so its field is left out."""
    n = data.draw(st.integers(1, 30))
    cells = st.one_of(floats, st.sampled_from([1.5, 2.25, 1.5]))
    columns = [data.draw(st.lists(cells, min_size=n, max_size=n)) for _ in fields]
    times = sorted(data.draw(st.lists(st.integers(0, 2**62), min_size=n, max_size=n)))
    seq = data.draw(st.lists(st.integers(0, 65535), min_size=n, max_size=n))
    flags = data.draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    tags = {"device": "d", "session": "s"}
    lines = SampleLines(series_prefix("pv_sample", tags))
    ours = lines.encode_columns(times, seq, flags, tuple(fields), columns)
    # Twice: the second time every text is remembered.
    assert lines.encode_columns(times, seq, flags, tuple(fields), columns) == ours
    want = [
        point_line(
            "pv_sample", tags, {**dict(zip(fields, vs, strict=True)), "seq": s, "flags": fl}, t
        )
        for t, s, fl, *vs in zip(times, seq, flags, *columns, strict=True)
    ]
    assert ours == want


def test_layout_switches_back_and_forth() -> None:
    lines = SampleLines(series_prefix("pv_sample", {"device": "d"}))
    full = {"pressure_kpa": 101.325, "volume_ml": 2.5}
    fault = {"volume_ml": 2.5}
    for values in (full, fault, full, {"volume_ml": 2.0}, full, {"seq": 1.0}, full):
        want = point_line("pv_sample", {"device": "d"}, {**values, "seq": 1, "flags": 2}, 9)
        assert lines.encode(values, 1, 2, 9) == want


@settings(max_examples=300, deadline=None)
@given(
    tag_text.filter(bool),
    st.dictionaries(
        st.sampled_from(["detail", "value", "state", "x y", 'q"']),
        st.one_of(floats, st.integers(-(2**62), 2**62), st.booleans(), tag_text),
        min_size=1,
    ),
)
def test_general_lines_match_point(code: str, fields: dict[str, object]) -> None:
    tags = {"device": "d", "code": code}
    ours = encode_line(series_prefix("pv_event", tags), fields, 123)  # type: ignore[arg-type]
    assert ours == point_line("pv_event", tags, fields, 123)


def test_measurement_escapes_match_point() -> None:
    for name in ["pv sample", "pv,sample", "a=b", "tab\tx"]:
        assert encode_line(series_prefix(name, {}), {"v": 1.5}, 1) == point_line(
            name, {}, {"v": 1.5}, 1
        )


SHARED = SampleLines(series_prefix("pv_sample", {"device": "d"}))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(floats, floats), min_size=1, max_size=20))
def test_remembered_float_texts_stay_exact(pairs: list[tuple[float, float]]) -> None:
    """One encoder for many lines, as in the daemon: repeats, 0.0 and -0.0, NaN, all exact."""
    for p, v in [*pairs, (0.0, -0.0), (-0.0, 0.0), *pairs]:
        values = {"pressure_kpa": p, "volume_ml": v}
        want = point_line("pv_sample", {"device": "d"}, {**values, "seq": 1, "flags": 0}, 7)
        assert SHARED.encode(values, 1, 0, 7) == want
