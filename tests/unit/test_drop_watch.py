"""When a device drops too much of what it sends: said once when it starts, once when it
ends, judged over the last minute (pure: counts and times in)."""

from __future__ import annotations

from pathlib import Path

from daemon.acquisition.drop_watch import DropWatch
from daemon.config import DeviceConfig
from daemon.tools.probe import latency_warning


def test_degraded_once_over_the_share_and_recovered_once_the_minute_is_clean() -> None:
    watch = DropWatch(0.10)
    changes = []
    good = bad = 0
    for second in range(200):
        good += 50
        if 30 <= second < 60:
            bad += 20  # 29 % of lines lost for half a minute
        dropped = {"bad_value": bad, "garbage_bytes": 10**6 * second}  # bytes do not count
        change = watch.check(float(second), good, dropped)
        if change:
            changes.append((second, change, watch.degraded))
    assert [c[1] for c in changes] == ["degraded", "recovered"]
    (start, _, why), (end, _, _) = changes
    # 20 of 70 lines a second lost from second 30: the minute's share passes 10 % at 41
    assert start == 41 and "mostly bad_value" in str(why) and "over 10%" in str(why)
    assert 60 < end <= 200, "back under 10 % once enough of the minute is clean"


def test_too_few_lines_are_not_judged() -> None:
    watch = DropWatch(0.10)
    assert watch.check(0.0, 0, {"checksum": 0}) is None
    assert watch.check(1.0, 5, {"checksum": 5}) is None  # 50 %, but of 10 lines
    assert watch.degraded is None


def test_a_clockless_device_behind_a_16_ms_usb_latency_timer_is_warned_of(tmp_path: Path) -> None:
    tty = tmp_path / "dev" / "ttyUSB3"
    tty.parent.mkdir()
    tty.touch()
    sysfs = tmp_path / "sys" / "ttyUSB3" / "device"
    sysfs.mkdir(parents=True)
    (sysfs / "latency_timer").write_text("16\n")
    field = {"group": "v", "field": "pressure_kpa", "unit": "bar"}
    lines = DeviceConfig(name="g", driver="lines", port=str(tty), pattern="(?P<v>.*)",
                         fields=[field])  # fmt: skip
    said = latency_warning(lines, clockless=True, sys_tty=tmp_path / "sys")
    assert "up to 16 ms (latency_timer)" in said and "1 ms" in said
    assert latency_warning(lines, clockless=False, sys_tty=tmp_path / "sys") == ""
    (sysfs / "latency_timer").write_text("1\n")
    assert latency_warning(lines, clockless=True, sys_tty=tmp_path / "sys") == ""
