"""The bench screen as an operator reads it, in headless Chromium, on a compliance run
(a PVS stepping 1, 2, 3, 4 atm with holds): the page's first paint before its feed
connects, the large readout (what InfluxDB recorded, to the display's resolution), the
step under way with its nominal and held pressure and its hold timer, the rated burst
pressure's line, axes that do not blow a steady hold's noise up, 24-hour ISO times with
their zone said; then the daemon stopped: every badge "unknown" within the page's
2 s, never a green "online" over a frozen trace.

Screenshots of the compliance run and of the stopped daemon are kept in
``var/test-artifacts/`` for a person to look at."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from daemon.influx.v1 import InfluxV1
from tests.e2e.test_live_page import ARTIFACTS, coloured, get
from tests.support.browser import browser, console_errors
from tests.support.helpers import DaemonProcess, SimProcess, finish, wait_for, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

TAGS = '{ bench = "ci", rbp_atm = "4", step_atm = "1", cycles_target = "10" }'
ISO = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_a_compliance_run_and_a_stopped_daemon_on_the_bench_screen(
    short_tmp: Path, influx: InfluxV1, figure: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = SimProcess(short_tmp, "pvs0", "--rate", "100", "--profile", "compliance",
                     "--rbp", "4", "--hold", "4", "--seed", "11")  # fmt: skip
    extra = f'[http]\nlisten = "127.0.0.1:{port}"\n[recording]\ndir = "{short_tmp}/rec"\n'
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)}, extra)
    cfg.write_text(cfg.read_text().replace('tags = { bench = "ci" }', f"tags = {TAGS}"))
    daemon = DaemonProcess(cfg)
    driver = browser(short_tmp)

    def js(script: str) -> Any:
        return driver.execute_script(script)

    def card(selector: str) -> str:
        found: str = js(
            f"const e = document.querySelector(\"[data-device='bench1'] {selector}\");"
            "return e ? e.innerText.trim() : '';"
        )
        return found

    try:
        # The page as served holds the device's state and last window of data.
        wait_for(lambda: len(first_message(base).get("t", [])) > 10, 30, "data in the page")
        assert first_message(base)["state"] == "online"
        # First paint: with the feed blocked, the page still shows the device's state and
        # its last window of data, from the page itself.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/events"]})
        driver.get(base + "/")
        first = js(
            "const d = pvlog.devices.get('bench1');"
            "return d && [d.t.length, d.status.state, document.querySelector("
            "\"[data-device='bench1'] .readout .p\").innerText];"
        )
        assert first is not None and first[0] > 10 and first[1] == "online", first
        assert re.fullmatch(r"-?\d+\.\d\d", first[2]), first
        # ...and with no feed, it says within its 2 s that nothing shown is live.
        wait_for(lambda: card(".state").startswith("unknown: no feed since"), 10, "unknown")
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        driver.get(base + "/")
        wait_for(lambda: js("return document.getElementById('link').textContent") == "live",
                 15, "the feed")  # fmt: skip

        # The run's step at 2 atm or more, held: the readout says which and for how long.
        step = re.compile(r"hold (\d+\.\d) s at (\d+\.\d\d) atm · step (\d): ([2-4]) atm nominal")
        wait_for(lambda: (m := step.fullmatch(card(".readout .hold"))) and float(m[1]) >= 1.5,
                 60, "a step at 2 atm or more, held 1.5 s")  # fmt: skip
        held = step.fullmatch(card(".readout .hold"))
        assert held is not None
        assert abs(float(held[2]) - int(held[4])) < 0.1, "held near its nominal"
        # The 1 atm step sits on the inflation threshold: the steps counted are above it.
        assert int(held[3]) == int(held[4]) - 1, "steps at (1), 2, 3, 4 atm: 2 atm is the 1st"
        shown = js(
            "const d = pvlog.devices.get('bench1');"
            "const r = d.status.readout;"
            "return [document.querySelector(\"[data-device='bench1'] .readout .p\").innerText,"
            " r.now.t, d.trace.scales.p.min, d.trace.scales.p.max, d.trace.axes[1]._values];"
        )
        readout, at, low, high, labels = shown
        assert high - low >= 1.0, "a steady hold's noise drawn across at least 1 atm"
        assert len(labels) == len(set(labels)) > 1, labels
        assert card(".readout .cycle") == "cycle 1 of 10 under way"
        assert card(".readout .rec").startswith("recording to ") and ".mcap" in card(".rec")
        time.sleep(0.3)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "bench_compliance.png"))
        trace = driver.find_element(By.CSS_SELECTOR, "[data-device='bench1'] .trace canvas")
        assert coloured(trace.screenshot_as_png, (0x8E, 0x24, 0xAA), 30) > 200, "RBP's line"
        assert js("return document.querySelector('th.start').innerText") == "start (UTC)"
        events = js("return [...document.querySelectorAll(\"[data-device='bench1'] .events li\")]"
                    ".map((e) => e.textContent)")  # fmt: skip
        assert events and all(re.match(ISO + "  ", e) for e in events), events
        assert js("return document.getElementById('tz-said').textContent") == "UTC"

        # The daemon stops: the page says so on every device, within its 2 s.
        assert console_errors(driver) == [] and js("return pvlog.errors") == []
        stopped = time.monotonic()
        finish(sim, daemon)
        wait_for(lambda: card(".state").startswith("unknown: no feed since"), 15, "unknown")
        seen_s = time.monotonic() - stopped
        stale = card(".stale")
        assert stale.startswith("the page lost its feed at ") and "nothing here is live" in stale
        assert "online" not in card(".state")
        driver.save_screenshot(str(ARTIFACTS / "bench_stopped.png"))
    finally:
        driver.quit()
        daemon.kill()
        sim.kill()

    # What the readout said is what was recorded, to the display's resolution.
    rows = influx.query(
        "SELECT pressure_kpa FROM pv_sample WHERE device = 'bench1' AND "
        f"time >= {int(at * 1e9) - 2_000_000} AND time <= {int(at * 1e9) + 2_000_000}"
    )["results"][0]["series"][0]["values"]
    recorded = min(rows, key=lambda r: abs(r[0] - at * 1e9))[1] / 101.325
    assert abs(float(readout) - recorded) <= 0.005 + 1e-9, (readout, recorded)
    figure(f"bench screen: readout {readout} atm = recorded {recorded:.4f} atm; step "
           f"{held[3]} at {held[4]} atm nominal held {held[1]} s; badge 'unknown' "
           f"{seen_s:.1f} s after the stop was asked (the page's own bound: 2 s)")  # fmt: skip


def first_message(base: str) -> dict[str, Any]:
    """The device's part of the first message the page is served with ({}: none yet)."""
    status, html = get(base + "/")
    found = re.search(rb'<script id="first" type="application/json">(.*?)</script>', html, re.S)
    if status != 200 or found is None:
        return {}
    device: dict[str, Any] = json.loads(found[1])["devices"][0]
    return device
