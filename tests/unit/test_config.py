"""A bad configuration is one clear line naming the key, and exit code 2; a good one loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.sizes import parse_size

REPO = Path(__file__).resolve().parents[2]

GOOD = """
[influx]
url = "http://127.0.0.1:8086"
database = "pvlog"
batch_size = 5000
flush_interval_ms = 200

[outbox]
path = "var/outbox.sqlite"
max_bytes = "2GiB"

[recording]
dir = "var/recordings"

[mqtt]
url = "mqtt://127.0.0.1:1883"
topic_prefix = "pvlog"

[session]
name = "auto"
tags = { bench = "B1" }

[[device]]
name = "inflator1"
driver = "pvs"
port = "/dev/ttyUSB0"
baudrate = 115200
"""


LBX = "[[device.channels]]\n"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pvlog.toml"
    p.write_text(text)
    return p


def test_the_design_example_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.outbox.max_bytes == 2 * 2**30
    assert cfg.device[0].name == "inflator1"
    assert cfg.session.tags == {"bench": "B1"}


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.toml")))
def test_shipped_examples_load(name: str) -> None:
    load_config(REPO / "config" / name)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("batch_size = 5000", "batch_size = 0"), "influx.batch_size"),
        (("batch_size = 5000", 'batch_size = "many"'), "influx.batch_size"),
        (('url = "http://127.0.0.1:8086"', 'url = "ftp://x"'), "influx.url"),
        (('api = "v1"', 'api = "v9"'), "influx.api"),
        (('max_bytes = "2GiB"', 'max_bytes = "lots"'), "outbox.max_bytes"),
        (('max_bytes = "2GiB"', 'max_bytes = "10KB"'), "outbox.max_bytes"),
        (('driver = "pvs"', 'driver = "xyz"'), "device[0].driver"),
        (('name = "inflator1"', 'name = "bad name!"'), "device[0].name"),
        (("baudrate = 115200", "baudrate = 12"), "device[0].baudrate"),
        (('port = "/dev/ttyUSB0"', "porrt = 1"), "device[0].porrt"),
        (("[session]", "[session]\ncolour = 1"), "session.colour"),
        (('tags = { bench = "B1" }', 'tags = { device = "x" }'), "session.tags"),
        (('tags = { bench = "B1" }', 'tags = { state = "x" }'), "session.tags"),
        (('database = "pvlog"', 'database = "x\\" ; DROP"'), "influx.database"),
        (
            ("baudrate = 115200", LBX + 'kind = "blood"\nunit = "kPa"\nscale = 1'),
            "device[0].channels[0].kind",
        ),
        (
            ("baudrate = 115200", LBX + 'kind = "ibp"\nunit = "bar"\nscale = 1'),
            "device[0].channels[0].unit",
        ),
        (("baudrate = 115200", LBX + 'kind = "ibp"\nunit = "kPa"'), "device[0].channels[0].scale"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    text = GOOD if change[0] in GOOD else GOOD.replace("[influx]", '[influx]\napi = "v1"')
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text.replace(*change)))
    message = str(err.value)
    assert "\n" not in message
    assert f": {key}:" in message or f": {key} " in message, message


def test_lbx_channel_map_and_default_baudrates(tmp_path: Path) -> None:
    text = GOOD.replace("baudrate = 115200\n", "")
    text += '[[device]]\nname = "box"\ndriver = "lbx"\nport = "/dev/ttyACM0"\n'
    text += LBX + 'kind = "ibp"\nunit = "kPa"\nscale = 0.01\noffset = -1\n'
    cfg = load_config(write(tmp_path, text))
    assert [d.baudrate for d in cfg.device] == [115200, 921600]
    (channel,) = cfg.device[1].channel_map()
    assert (channel.kind, channel.unit, channel.scale, channel.offset) == ("ibp", "kPa", 0.01, -1)


def test_a_channel_map_is_for_lbx_only(tmp_path: Path) -> None:
    text = GOOD + LBX + 'kind = "ibp"\nunit = "mmHg"\nscale = 1\n'
    with pytest.raises(ConfigError, match=r"device\[0\]: channels: only the lbx driver"):
        load_config(write(tmp_path, text))


def test_a_channel_that_fits_no_field_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('driver = "pvs"', 'driver = "lbx"')
    text += LBX + 'kind = "volume"\nunit = "mmHg"\nscale = 1\n'
    with pytest.raises(ConfigError, match="volume in mmHg has no schema field"):
        load_config(write(tmp_path, text))


def test_no_device_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="device"):
        load_config(write(tmp_path, GOOD.split("[[device]]", maxsplit=1)[0]))


def test_duplicate_device_names(tmp_path: Path) -> None:
    text = GOOD + GOOD[GOOD.index("[[device]]") :]
    with pytest.raises(ConfigError, match="inflator1"):
        load_config(write(tmp_path, text))


def test_two_devices_on_one_port_are_refused_naming_both(tmp_path: Path) -> None:
    """Each would get half the bytes; a by-id link and the tty it points to are one port."""
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    link = tmp_path / "usb-FTDI_FT232R-if00-port0"
    link.symlink_to(tty)
    device = GOOD[GOOD.index("[[device]]") :]
    port = device.split('port = "', 1)[1].split('"', 1)[0]
    first = device.replace(port, str(tty))
    second = device.replace(port, str(link)).replace("inflator1", "gauge2")
    text = GOOD[: GOOD.index("[[device]]")] + first + second
    with pytest.raises(ConfigError, match=r"devices 'inflator1' and 'gauge2' both read .*ttyUSB0"):
        load_config(write(tmp_path, text))
    res = pvlog_run(write(tmp_path, text))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    tcp = text.replace(str(tty), "socket://Box:4001").replace(str(link), "socket://box:4001")
    with pytest.raises(ConfigError, match="one port is one device"):
        load_config(write(tmp_path, tcp))


def test_a_register_or_field_unit_is_any_lab_unit(tmp_path: Path) -> None:
    from drivers.modbus import field_factor

    assert field_factor("pressure_kpa", "inWC") == pytest.approx(0.24908891)
    assert field_factor("pressure_kpa", "MBAR") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="pressure_kpa takes a pressure unit"):
        field_factor("pressure_kpa", "furlong")


def test_sizes() -> None:
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size(1024) == 1024
    with pytest.raises(ValueError, match="not a size"):
        parse_size("2 parsecs")


@pytest.mark.parametrize(
    "text", ["[influx\nurl=", GOOD.replace("baudrate = 115200", "baudrate = -1")]
)
def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path, text: str) -> None:
    res = pvlog_run(write(tmp_path, text))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("pvlog: config error: ")
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("tags", "said"),
    [
        ('{ test = "brust" }', "tag test='brust': must be burst, compliance or fatigue"),
        ('{ rbp_atm = "fourteen" }', "tag rbp_atm='fourteen': must be a number above 0 and at "
                                     "most 100 atm"),
        ('{ rbp_atm = "nan" }', "tag rbp_atm='nan': must be a number above 0 and at most 100 "
                                "atm"),
        ('{ cycles = "2.5" }', "tag cycles='2.5': must be a whole number above 0 and at most "
                               "10000000"),
        ('{ rpb_atm = "14" }', "tag 'rpb_atm': not a tag pvlog reads; did you mean 'rbp_atm'?"),
        ('{ lot = " " }', "tag lot=' ': must not be blank"),
    ],
)  # fmt: skip
def test_a_tag_a_lot_report_could_not_use_is_refused(tmp_path: Path, tags: str, said: str) -> None:
    path = write(tmp_path, GOOD.replace('tags = { bench = "B1" }', f"tags = {tags}"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: session.tags: {said}"


def test_the_tags_a_lot_report_reads_and_free_tags_load(tmp_path: Path) -> None:
    tags = {"lot": "L7", "specimen": "b01", "test": "burst", "rbp_atm": "14", "cycles": "1e3",
            "operator": "alice", "bench": "3"}  # fmt: skip
    text = ", ".join(f'{k} = "{v}"' for k, v in tags.items())
    cfg = load_config(write(tmp_path, GOOD.replace('bench = "B1"', text)))
    assert cfg.session.tags == tags


def test_check_config_refuses_a_bad_tag_in_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('bench = "B1"', 'bench = "B1", test = "brust"'))
    cmd = [sys.executable, "-m", "daemon.cli", "check-config", "-c", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [
        f"pvlog: config error: {path}: session.tags: tag test='brust': must be burst, "
        "compliance or fatigue"
    ]
    assert res.stdout == ""


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    res = pvlog_run(tmp_path / "nope.toml")
    assert res.returncode == 2
    assert "cannot read" in res.stderr


def pvlog_run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_edge_mode_keys(tmp_path: Path) -> None:
    text = GOOD.replace('topic_prefix = "pvlog"', 'topic_prefix = "pvlog"\nmode = "edge"')
    cfg = load_config(write(tmp_path, text.replace("mode = ", 'edge_name = "e1"\nmode = ')))
    assert (cfg.mqtt.mode, cfg.mqtt.edge(), cfg.live_enabled) == ("edge", "e1", True)
    with pytest.raises(ConfigError, match=r"mqtt\.edge_name: must differ"):
        load_config(write(tmp_path, text.replace("mode = ", 'edge_name = "inflator1"\nmode = ')))
    with pytest.raises(ConfigError, match=r"mqtt\.mode"):
        load_config(write(tmp_path, text.replace('mode = "edge"', 'mode = "cloud"')))


def test_a_recorder_needs_no_device(tmp_path: Path) -> None:
    text = GOOD.split("[[device]]", maxsplit=1)[0]
    assert load_config(write(tmp_path, text), devices=False).device == []
