"""``pvlog check-config --probe`` and ``pvlog ports``: a config that is valid but records
nothing is found out before the run, device by device, with nothing written to any."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from serial.tools import list_ports

from daemon.config import Config, load_config
from daemon.influx.v1 import InfluxV1
from daemon.tools.probe import probe_influx
from tests.support.helpers import REPO, SimProcess, pvlog_cmd
from tests.support.mosquitto import PrivateMosquitto
from tests.support.victoria import PrivateVictoria

pytestmark = pytest.mark.e2e


def pvlog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pvlog_cmd(*args), capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )


def what(line: str) -> str:
    """``device bench`` of ``OK   device bench (pvs on ...): ...``."""
    found = re.match(r"(?:OK  |FAIL) (.+?)(?: \(|: )", line)
    assert found is not None, line
    return found.group(1)


def config(tmp: Path, influx: InfluxV1, broker: str, devices: dict[str, tuple[str, str]]) -> Path:
    text = f"""
[influx]
url = "{influx.url}"
database = "{influx.database}"
[outbox]
path = "{tmp}/outbox.sqlite"
[mqtt]
url = "{broker}"
"""
    for name, (driver, port) in devices.items():
        text += f'[[device]]\nname = "{name}"\ndriver = "{driver}"\nport = "{port}"\n'
    path = tmp / f"probe{len(devices)}.toml"
    path.write_text(text)
    return path


def test_probe_says_per_device_what_it_decoded_or_what_is_wrong(
    short_tmp: Path, influx: InfluxV1, mosquitto: PrivateMosquitto
) -> None:
    pvs = SimProcess(short_tmp, "pvs0", "--rate", "100")
    lbx = SimProcess(short_tmp, "lbx0", "--rate", "1000", model="lbx")
    wrong = SimProcess(short_tmp, "lbx1", "--rate", "1000", model="lbx")
    quiet_master, quiet_slave = os.openpty()
    (short_tmp / "quiet").symlink_to(os.ttyname(quiet_slave))
    devices = {
        "bench": ("pvs", str(pvs.link)),
        "cath": ("lbx", str(lbx.link)),
        "mixed": ("pvs", str(wrong.link)),  # an LBX read as PVS
        "quiet": ("pvs", str(short_tmp / "quiet")),
        "null": ("pvs", "/dev/null"),
        "gone": ("lbx", str(short_tmp / "ttyUSB9")),
    }
    try:
        done = pvlog("check-config", "-c", str(config(short_tmp, influx, mosquitto.url, devices)),
                     "--probe", "--probe-seconds", "2")  # fmt: skip
        good = {k: devices[k] for k in ("bench", "cath")}
        clean = pvlog("check-config", "-c", str(config(short_tmp, influx, mosquitto.url, good)),
                      "--probe", "--probe-seconds", "2")  # fmt: skip
    finally:
        received = [sim.stop()["rx_bytes"] for sim in (pvs, lbx, wrong)]
        os.close(quiet_master)
        os.close(quiet_slave)
    lines = {what(line): line for line in done.stdout.splitlines()[1:-1]}
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines["device bench"].startswith("OK   device bench (pvs on ")
    assert "BIX-30 SN00417" in lines["device bench"] or "identity not yet seen" in lines[
        "device bench"]  # fmt: skip
    assert lines["device cath"].startswith("OK") and "CLX-4" in lines["device cath"]
    assert lines["device mixed"].startswith("FAIL") and "none decode as pvs" in lines[
        "device mixed"]  # fmt: skip
    assert lines["device quiet"].endswith(
        "silent: no bytes in 2 s (device off, cable, or baud rate?)"
    )
    assert lines["device null"].endswith("not a serial device (a file, a directory or /dev/null?)")
    assert lines["device gone"].endswith("no such port (`pvlog ports` lists this machine's)")
    assert lines[f"InfluxDB {influx.url}"].startswith("OK")
    assert f"database {influx.database!r} created" in lines[f"InfluxDB {influx.url}"]
    assert lines[f"MQTT broker {mosquitto.url}"] == f"OK   MQTT broker {mosquitto.url}: connects"
    assert done.stdout.splitlines()[-1] == "probe: 4 OK, 4 failed"
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines()[-1] == "probe: 4 OK, 0 failed"
    assert "exists" in clean.stdout, "the database made by the first probe"
    assert received == [0, 0, 0], "the probe wrote nothing to any device"


def test_a_stopped_server_and_broker_fail_the_probe(short_tmp: Path, influx: InfluxV1) -> None:
    pvs = SimProcess(short_tmp, "pvs0", "--rate", "100")
    cfg = config(short_tmp, influx, "mqtt://127.0.0.1:9", {"bench": ("pvs", str(pvs.link))})
    cfg.write_text(cfg.read_text().replace(influx.url, "http://127.0.0.1:9"))
    try:
        done = pvlog("check-config", "-c", str(cfg), "--probe", "--probe-seconds", "1")
    finally:
        pvs.stop()
    assert done.returncode == 1
    assert "FAIL InfluxDB http://127.0.0.1:9: no answer to /ping" in done.stdout
    assert "FAIL MQTT broker mqtt://127.0.0.1:9: cannot connect" in done.stdout
    assert done.stdout.splitlines()[-1] == "probe: 1 OK, 2 failed"


def test_ports_lists_stable_by_id_paths_and_what_pyserial_enumerates(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    ptys = [os.openpty() for _ in range(2)]
    try:
        names = ["usb-FTDI_FT232R_USB_UART_A9XK1234-if00-port0", "usb-Keller_LEO5_77-if00"]
        for name, (_, slave) in zip(names, ptys, strict=True):
            (by_id / name).symlink_to(os.ttyname(slave))
        listed = pvlog("ports", "--json", "--by-id-dir", str(by_id))
        shown = pvlog("ports", "--by-id-dir", str(by_id))
        devices = [os.ttyname(slave) for _, slave in ptys]
    finally:
        for fds in ptys:
            for fd in fds:
                os.close(fd)
    assert listed.returncode == 0, listed.stderr
    found = {p["device"]: p for p in json.loads(listed.stdout)}
    for name, device in zip(names, devices, strict=True):
        assert found[device]["by_id"] == str(by_id / name)
        assert found[device]["config_path"] == str(by_id / name), "the path to paste"
        assert str(by_id / name) in shown.stdout
    for p in list_ports.comports():  # whatever this machine has, pyserial's view of it
        assert p.device in found
    assert shown.stdout.splitlines()[0].startswith("PORT (for the config)")


def test_a_v2_write_server_is_reached_and_said_what_it_can_check(tmp_path: Path) -> None:
    """VictoriaMetrics takes the v2 write API but has no bucket API: the probe says so."""
    server = PrivateVictoria(tmp_path)
    server.start()
    try:
        cfg = load_config_text(
            tmp_path,
            f'[influx]\nurl = "{server.url}"\napi = "v2"\norg = "lab"\nbucket = "b1"\n',
        )
        found = probe_influx(cfg)
    finally:
        server.cleanup()
    assert found.ok, found.said
    assert (
        found.said == "answers; it has no bucket API (a v2-compatible server): bucket not checked"
    )


def load_config_text(tmp: Path, text: str) -> Config:
    path = tmp / "v2.toml"
    path.write_text(text)
    return load_config(path, devices=False)
