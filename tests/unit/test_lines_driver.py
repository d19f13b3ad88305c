"""The lines driver: an ASCII instrument described in config, taken apart line by line
however the bytes arrive (sans-IO), every wrong line counted by reason."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.config import load_config
from drivers import registry
from drivers.lines import Field, LinesParser, LinesSpec, checksum_ok
from drivers.records import Sample

REPO = Path(__file__).resolve().parents[2]
DRUCK = LinesSpec(r"(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?),(?P<unit>[A-Za-z]+)",
                  [Field("value", "pressure_kpa", unit_group="unit")])  # fmt: skip
NMEA = LinesSpec(r"\$P,(?P<value>[-+0-9.]+),bar", [Field("value", "pressure_kpa", "bar")],
                 checksum="xor")  # fmt: skip


def values(records: list[object]) -> list[dict[str, float]]:
    return [r.values for r in records if isinstance(r, Sample)]


@given(st.lists(st.floats(-1, 40, allow_nan=False).map(lambda x: round(x, 5)), max_size=20),
       st.sets(st.integers(1, 400), max_size=6))  # fmt: skip
def test_a_stream_reads_the_same_however_it_is_cut(readings: list[float], cuts: set[int]) -> None:
    stream = b"".join(b"%.5f,bar\r\n" % r for r in readings)
    parser = LinesParser(DRUCK)
    got = []
    edges = [0, *sorted(c for c in cuts if c < len(stream)), len(stream)]
    for a, b in itertools.pairwise(edges):
        got += values(parser.feed(stream[a:b], a))
    assert got == [{"pressure_kpa": pytest.approx(r * 100)} for r in readings]
    assert sum(parser.dropped.values()) == 0


def test_the_unit_each_line_names_and_wrong_lines_by_reason() -> None:
    parser = LinesParser(DRUCK)
    out = parser.feed(b"2.5,psi\r\n1,BAR\r\nhello\r\n3.0,furlong\r\n\r\n7,bar\r\n", 9)
    assert LinesParser(DRUCK._replace(pattern=r"(?P<value>\S+),(?P<unit>\w+)")).feed(
        b"nan,bar\r\ninf,bar\r\n", 1) == []  # an instrument's no-reading is no value  # fmt: skip
    assert values(out) == [{"pressure_kpa": pytest.approx(2.5 * 6.894757)},
                           {"pressure_kpa": 100.0}, {"pressure_kpa": 700.0}]  # fmt: skip
    assert all(isinstance(r, Sample) and r.rx_time_ns == 9 for r in out)
    assert parser.dropped["no_match"] == 1 and parser.dropped["bad_value"] == 1
    assert parser.allowed_writes == frozenset()  # it streams: pvlog writes nothing


def test_checksums_xor_and_sum() -> None:
    assert checksum_ok(b"$P,1.01325,bar*0B", "xor") == (True, b"$P,1.01325,bar")
    body = b"P,1.01325,bar"
    assert checksum_ok(b"$%s*%02X" % (body, sum(body) & 0xFF), "sum")[0]
    assert not checksum_ok(b"$P,1.01325,bar*0C", "xor")[0]
    assert not checksum_ok(b"$P,1.01325,bar", "xor")[0]  # none at all
    assert not checksum_ok(b"$P,1.01325,bar*ZZ", "xor")[0]
    parser = LinesParser(NMEA)
    out = parser.feed(b"$P,1.01325,bar*0B\r\n$P,2.00000,bar*0B\r\n", 1)
    assert values(out) == [{"pressure_kpa": pytest.approx(101.325)}]
    assert parser.dropped["checksum"] == 1


def test_an_overlong_line_is_counted_once_and_skipped_to_its_end() -> None:
    parser = LinesParser(DRUCK)
    assert parser.feed(b"x" * 3000, 1) == []
    assert parser.feed(b"y" * 3000 + b"\r\n1,bar\r\n", 2) != []
    assert parser.dropped["overlong"] == 1 and parser.dropped["no_match"] == 0


def test_a_polled_instrument_answers_what_it_is_asked_and_nothing_else_counts() -> None:
    parser = LinesParser(DRUCK._replace(poll=b"*R\r"))
    assert parser.allowed_writes == {b"*R\r"} and parser.requests == (b"*R\r",)
    assert parser.feed(b"1,bar\r\n", 1) == []  # unasked
    assert parser.dropped["unsolicited"] == 1
    parser.sent(0)
    assert parser.awaiting
    assert parser.feed(b"2,b", 2) == [] and parser.awaiting
    parser.feed(b"ar\r\n", 3)
    assert (parser.awaiting, parser.outcome) == (False, "ok")
    (answer,) = parser.end_cycle()
    assert isinstance(answer, Sample) and answer.rx_time_ns == 3
    assert answer.values == {"pressure_kpa": 200.0}
    parser.sent(0)
    parser.timed_out()
    assert parser.outcome == "timeout" and parser.end_cycle() == []
    parser.sent(0)
    parser.feed(b"garbled\r\n", 4)  # answered, wrongly: said at once, not waited out
    assert (parser.awaiting, parser.outcome) == (False, "no_match")


def test_the_shipped_druck_example_asks_with_its_poll_only() -> None:
    (device,) = load_config(REPO / "config" / "druck.toml").device
    parser = registry.driver("lines").parser(device.options())
    assert parser.allowed_writes == {b"*R\r"}
    assert device.read_interval_ms == 0


def test_a_streaming_line_instrument_is_read_as_its_lines_arrive(tmp_path: Path) -> None:
    """It has no clock: a line's receive time is its sample's, so it is read on arrival
    (at the 16 ms a clocked device is read at, a line waited a median 32 ms)."""
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        '[influx]\nurl = "http://127.0.0.1:8086"\n'
        '[[device]]\nname = "mic"\ndriver = "lines"\nport = "/dev/null"\n'
        'pattern = "(?P<d>[0-9.]+)"\nfields = [{ group = "d", field = "diameter_mm" }]\n'
    )
    (device,) = load_config(cfg).device
    assert device.read_interval_ms == 0
    cfg.write_text(cfg.read_text() + "read_interval_ms = 20\n")
    (told,) = load_config(cfg).device
    assert told.read_interval_ms == 20, "what the config says still goes"
    (pvs,) = load_config(REPO / "config" / "demo.toml").device[:1]
    assert pvs.read_interval_ms == 16, "a device with its own clock keeps its interval"


def test_a_whole_overlong_line_in_one_read_is_overlong_not_a_checksum() -> None:
    parser = LinesParser(NMEA)
    out = parser.feed(b"$" + b"7" * 3000 + b"\r\n$P,1.01325,bar*0B\r\n", 1)
    assert values(out) == [{"pressure_kpa": pytest.approx(101.325)}]
    assert parser.dropped["overlong"] == 1 and parser.dropped["checksum"] == 0
    assert parser.examples["overlong"].startswith(b"$777")


#: kPa per unit, from NIST SP 811 (2008), Appendix B.8, to its seven significant digits:
#: an independent table, typed in, not computed from pvlog's definitions.
NIST_KPA = {
    "Pa": 1.0e-3, "hPa": 1.0e-1, "kPa": 1.0, "MPa": 1.0e3, "mbar": 1.0e-1, "bar": 1.0e2,
    "psi": 6.894757, "atm": 1.01325e2, "torr": 1.333224e-1, "mmHg": 1.333224e-1,
    "inHg": 3.386389, "inH2O": 2.490889e-1, "cmH2O": 9.80665e-2, "mmH2O": 9.80665e-3,
    "kgf/cm2": 9.80665e1,
}  # fmt: skip
SPELLINGS = {
    "mbar": ["mbar", "mBar", "MBAR", "millibar"], "inH2O": ["inH2O", "inWC", "INH2O", '"H2O'],
    "kgf/cm2": ["kg/cm2", "kgf/cm²", "KG/CM2"], "MPa": ["MPa", "MPA"], "torr": ["Torr", "TORR"],
    "mmHg": ["mmHg", "MMHG"], "cmH2O": ["cmH2O", "cmWC"], "psi": ["psi", "PSI"],
}  # fmt: skip


@pytest.mark.parametrize(("unit", "kpa"), NIST_KPA.items())
def test_every_lab_unit_converts_exactly_as_nist_defines_it(unit: str, kpa: float) -> None:
    parser = LinesParser(DRUCK._replace(pattern=DRUCK_PATTERN))
    spellings = SPELLINGS.get(unit, [unit])
    lines = b"".join(f"2.5,{s}\r\n".encode("latin-1") for s in spellings)  # as sent
    got = values(parser.feed(lines, 1))
    assert got == [{"pressure_kpa": pytest.approx(2.5 * kpa, rel=5e-7)}] * len(spellings)
    assert sum(parser.dropped.values()) == 0


DRUCK_PATTERN = load_config(REPO / "config" / "druck.toml").device[0].pattern
"""The shipped example's pattern: it must take every unit's spelling."""


def test_a_unit_pvlog_does_not_know_is_a_bad_value_named_once() -> None:
    parser = LinesParser(DRUCK._replace(pattern=DRUCK_PATTERN))
    out = parser.feed(b"1,furlong\r\n2,furlong\r\n3,psia\r\n4,bar\r\n", 1)
    assert values(out) == [{"pressure_kpa": 400.0}]
    assert parser.dropped["bad_value"] == 3
    assert parser.unknown_units == ["furlong", "psia"]
    assert parser.examples["bad_value"] == b"3,psia"


def test_the_daemon_names_an_unknown_unit_once_in_its_log(caplog: pytest.LogCaptureFixture) -> None:
    from daemon.acquisition.device import Acquisition
    from daemon.config import DeviceConfig

    field = {"group": "value", "field": "pressure_kpa", "unit_group": "unit"}
    acq = Acquisition(DeviceConfig(name="druck", driver="lines", port="/dev/null",
                                   pattern=DRUCK_PATTERN, fields=[field]))  # fmt: skip
    caplog.set_level("WARNING", logger="daemon.acquisition.device")
    for t in range(3):
        acq._on_chunk(b"1,furlong\r\n2,furlong\r\n3,bar\r\n", t)
    said = [r.message for r in caplog.records if "furlong" in r.message]
    assert len(said) == 1 and said[0].startswith("druck: a line names the unit 'furlong'")
    assert acq.status.dropped["bad_value"] == 6 and acq.status.samples == 3
