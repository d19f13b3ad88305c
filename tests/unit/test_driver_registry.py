"""One registry of drivers: what config validation, acquisition and the recording tools
all ask; an unknown driver is an error naming the known ones, never a silent default."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.pipeline import Chunk, Samples
from daemon.recordings.writer import DeviceRecording
from daemon.sessions.state import SessionState
from daemon.tools.recording import info
from drivers import registry
from drivers.lbx import LbxParser
from drivers.modbus import KELLER, ModbusParser, read_request
from drivers.pvs import PvsParser, sentence

GOLDEN_PVS = b"$PVS,1234,4294960000,12.345,ATM,1.234,00*38\r\n"


def test_every_driver_is_named_with_its_spec_speed_and_declares_its_writes() -> None:
    assert sorted(registry.DRIVERS) == ["lbx", "lines", "modbus", "pvs"]
    assert registry.driver("pvs").default_baudrate == 115200
    assert registry.driver("lbx").default_baudrate == 921600
    assert registry.driver("modbus").default_baudrate == 19200
    assert isinstance(registry.driver("pvs").parser(), PvsParser)
    assert isinstance(registry.driver("lbx").parser(), LbxParser)
    for spec in registry.DRIVERS.values():
        if not spec.polled:
            assert spec.parser().allowed_writes == frozenset(), f"{spec.name} streams: no writes"
    modbus = registry.driver("modbus").parser(registry.Options(unit_id=3, registers=KELLER))
    assert isinstance(modbus, ModbusParser)
    assert modbus.allowed_writes == {read_request(3, KELLER[0])}  # its one read, nothing else


def test_a_parser_from_the_registry_decodes_its_protocol() -> None:
    parser = registry.driver("pvs").parser()
    (sample,) = parser.feed(GOLDEN_PVS, 1)
    assert sample.seq == 1234  # type: ignore[union-attr]
    assert sum(parser.dropped.values()) == 0


def test_an_unknown_driver_is_an_error_naming_the_known_ones() -> None:
    known = r"\(known: lbx, lines, modbus, pvs\)"
    with pytest.raises(registry.UnknownDriver, match=rf"'canbus' {known}"):
        registry.driver("canbus")


def test_config_names_the_key_and_the_known_drivers(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[device]]\nname = "d"\ndriver = "xyz"\nport = "/dev/null"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    said = "device[0].driver: unknown driver 'xyz' (known: lbx, lines, modbus, pvs)"
    assert said in str(err.value)


def test_the_channel_map_goes_only_to_a_driver_that_takes_one(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[device]]\nname = "d"\ndriver = "pvs"\nport = "/dev/null"\n'
        '[[device.channels]]\nkind = "pressure"\nunit = "kPa"\nscale = 1\n'
    )
    with pytest.raises(ConfigError, match="only the lbx driver takes a channel map"):
        load_config(cfg)


def test_recording_info_decodes_with_the_files_driver_and_never_guesses(tmp_path: Path) -> None:
    """A recording of a driver this pvlog does not have is not decoded as PVS."""
    bad = sentence("PVS,1,2,3.000,ATM,0.100,00")[:-5] + b"*00\r\n"  # a wrong checksum
    for driver, where in (("pvs", "known"), ("newfangled", "unknown")):
        meta = {"driver": driver}
        rec = DeviceRecording(
            tmp_path / where, "d", SessionState("s"), metadata=meta, max_file_bytes=2**20
        )
        rec.take(Chunk(GOLDEN_PVS + bad, 1, Samples(), [], []))
        rec.close()
    (known,) = (tmp_path / "known").rglob("*.mcap")
    (unknown,) = (tmp_path / "unknown").rglob("*.mcap")
    assert info(known)["errors"] == {"checksum": 1}
    assert info(unknown)["driver"] == "newfangled"
    assert info(unknown)["errors"] == {}, "not decoded with a driver it was not recorded with"


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('driver = "modbus"', "device[0]: registers: a modbus device needs a preset"),
        ('driver = "pvs"\npreset = "keller"', "registers, preset: only the modbus driver"),
        ('driver = "pvs"\npoll = "*R"', "pattern, fields, poll: only the lines driver takes them"),
        ('driver = "modbus"\n[[device.registers]]\nfield = "pressure_kpa"\naddress = 2\n'
         'unit = "mL"', "device[0].registers[0]: unit 'mL': pressure_kpa takes"),
        ('driver = "modbus"\n[[device.registers]]\nfield = "x"\naddress = 2\nfunction = 6',
         "device[0].registers[0].function: Input should be 3 or 4"),
        ('driver = "modbus"\n[[device.registers]]\nfield = "x"\naddress = 65535\n',
         "address: the value runs past register 0xFFFF"),
        ('driver = "lines"', "pattern, fields: a lines device needs a pattern and fields"),
        ("driver = 'lines'\npattern = '(?P<v>[0-9]+)'",
         "pattern, fields: a lines device needs a pattern and fields"),
        ("driver = 'lines'\npattern = '(?P<v>[0-9]+'\n[[device.fields]]\ngroup = 'v'\nfield = 'x'",
         "pattern: missing ), unterminated subpattern"),
        ("driver = 'lines'\npattern = '(?P<v>[0-9]+)'\n[[device.fields]]\ngroup = 'w'\nfield = 'x'",
         "pattern: group 'w' is not in the pattern"),
        ("driver = 'lines'\npattern = '(?P<v>[0-9]+)'\n[[device.fields]]\ngroup = 'v'\n"
         "field = 'pressure_kpa'\nunit = 'mL'",
         "device[0].fields[0]: unit 'mL': pressure_kpa takes a pressure"),
    ],
)  # fmt: skip
def test_a_register_map_or_line_that_cannot_be_read_is_refused_at_load(
    tmp_path: Path, table: str, said: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[device]]\nname = "g"\nport = "/dev/null"\n{table}\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert said in str(err.value)


def test_a_keller_preset_and_its_extra_register_read_in_order(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[device]]\nname = "g"\nport = "/dev/null"\ndriver = "modbus"\n'
                   'preset = "keller"\nunit_id = 5\n[[device.registers]]\nfield = "t_c"\n'
                   'address = 8\ntype = "int16"\nfunction = 4\nscale = 0.1\n')  # fmt: skip
    (device,) = load_config(cfg).device
    assert device.read_interval_ms == 0  # answers read as they arrive
    assert [(r.field, r.address, r.function) for r in device.register_map()] == [
        ("pressure_kpa", 2, 3), ("t_c", 8, 4)]  # fmt: skip
    parser = registry.driver("modbus").parser(device.options())
    assert isinstance(parser, ModbusParser) and parser.unit_id == 5
