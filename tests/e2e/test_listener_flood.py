"""1,100 clients that open a connection to the live page's listener, send half a
request and wait, while the bench's device is unplugged and plugged in again: the
device's port gets its descriptor when it returns, nothing is lost beyond what the
unplug itself lost, the flood is refused past the cap and said quietly, and
``/healthz`` answers once the idle clients are closed."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from daemon.service import http_limits
from tests.e2e.test_port_faults import rows
from tests.support.helpers import DaemonProcess, SimProcess, finish, query_samples, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

CLIENTS = 1100


@contextlib.contextmanager
def descriptors() -> Iterator[None]:
    """Room in this process for the flood's sockets (raised after the daemon started, so
    that it starts with the limit it would have had)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CLIENTS + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise AssertionError(f"this machine allows {hard} open files; the test needs {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def flood(port: int) -> list[socket.socket]:
    """``CLIENTS`` connections, each with half a request head sent."""
    held = []
    for _ in range(CLIENTS):
        s = socket.socket()
        s.settimeout(10)
        with contextlib.suppress(OSError):  # refused, or reset once past the cap
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        held.append(s)
    return held


def healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def test_a_flood_of_idle_clients_never_keeps_a_port_from_its_device(
    short_tmp: Path, influx: InfluxV1, figure: Callable[[str], None]
) -> None:
    by_id = short_tmp / "serial" / "by-id"
    by_id.mkdir(parents=True)
    sim = SimProcess(by_id, "usb-BIX30_SN00417-if00", "--rate", "100", "--seed", "71")
    http = free_port()
    cfg = write_config(short_tmp, influx.url, influx.database, {"bench1": str(sim.link)},
                       extra=f'[http]\nlisten = "127.0.0.1:{http}"\n')  # fmt: skip
    daemon = DaemonProcess(cfg)
    held: list[socket.socket] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(descriptors())
        stack.callback(lambda: [s.close() for s in held])
        stack.callback(sim.kill)
        stack.callback(daemon.kill)
        sim.wait_listening()
        deadline = time.monotonic() + 60
        while healthz(http) != 200:
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(0.2)
        held = flood(http)
        unplug_ns = time.time_ns()
        sim.control(cmd="unplug")
        time.sleep(1.5)
        sim.control(cmd="replug")
        back_ns = time.time_ns()
        # The flood's admitted clients are closed after the head timeout; then the probe
        # gets in again (before that, a refusal is an answer too: 503).
        deadline = time.monotonic() + http_limits.HEAD_TIMEOUT_S + 60
        answers = []
        while (status := healthz(http)) != 200:
            answers.append(status)
            assert time.monotonic() < deadline, f"/healthz: {answers}\n{daemon.log()}"
            time.sleep(0.5)
        healthy_after_s = (time.time_ns() - back_ns) / 1e9
        time.sleep(1)
        finish(sim, daemon)
    figure(f"/healthz 200 again {healthy_after_s:.1f} s after the replug, under {CLIENTS} "
           f"idle clients (answers meanwhile: {sorted(set(map(str, answers)))})")  # fmt: skip

    events = {r["code"]: r for r in rows(influx, "SELECT * FROM pv_event WHERE device = 'bench1'")}
    assert {"port_lost", "port_restored"} <= set(events)
    resumed_after_s = (events["port_restored"]["time"] - back_ns) / 1e9
    figure(f"reading again {resumed_after_s:.2f} s after the port came back (test_port_faults' "
           "bound: 10.5 s on a loaded machine)")  # fmt: skip
    assert resumed_after_s < 10.5

    truth = {t["seq"]: t for t in sim.truth() if t["kind"] == "sample" and t["delivered"]}
    got = [r["seq"] for r in query_samples(influx, "bench1")]
    assert got == sorted(set(got)) and set(got) <= set(truth), "each sample once, none made up"
    in_flight = [s for s in truth if s not in set(got)]
    offsets_ms = [(truth[s]["host_ns"] - unplug_ns) / 1e6 for s in in_flight]
    assert all(-1500 < ms < 300 for ms in offsets_ms), offsets_ms  # as test_port_faults
    figure(f"{len(got)} of {len(truth)} delivered samples recorded; {len(in_flight)} were in "
           "flight when the cable went")  # fmt: skip
    log = daemon.log()
    assert "out of system resource" not in log and "Traceback" not in log
    assert len(log) < 100_000, f"the log grew {len(log)} bytes"
