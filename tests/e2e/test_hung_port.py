"""One device whose port hangs beside one that streams: the streaming device is
recorded exactly, stamped as it always is, and the stop does not wait for the hung one.

Two hung ports, as a lab meets them: an ``rfc2217://`` server that accepts and never
negotiates (pyserial's open waits 3 s for it, then gives up: again and again), and a
``socket://`` whose server never accepts (its backlog full: the connect waits 5 s).
Opened on the event loop, each of these held every other device's reads for seconds."""

from __future__ import annotations

import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from daemon.influx.v1 import InfluxV1
from tests.support.helpers import DaemonProcess, SimProcess, quantile, query_samples, write_config

pytestmark = pytest.mark.e2e


def silent_server(stack: ExitStack) -> int:
    """A TCP server that accepts every connection and never says a byte."""
    server = stack.enter_context(closing(socket.create_server(("127.0.0.1", 0))))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    stack.callback(lambda: [c.close() for c in held])
    return int(server.getsockname()[1])


def full_backlog(stack: ExitStack) -> int:
    """A TCP server that never accepts, its one-connection backlog taken: a connect to
    it hangs (the SYN is not answered) until the client gives up."""
    server = stack.enter_context(closing(socket.socket()))
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    for _ in range(2):  # the queue holds backlog + 1
        filler = stack.enter_context(closing(socket.socket()))
        filler.settimeout(0.5)
        try:
            filler.connect(("127.0.0.1", port))
        except OSError:
            break
    return port


@pytest.fixture
def hung_ports() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {"negotiates_never": f"rfc2217://127.0.0.1:{silent_server(stack)}",
               "accepts_never": f"socket://127.0.0.1:{full_backlog(stack)}"}  # fmt: skip


def test_a_hung_port_never_holds_up_another_device(
    short_tmp: Path, influx: InfluxV1, hung_ports: dict[str, str],
    figure: Callable[[str], None],
) -> None:  # fmt: skip
    sim = SimProcess(short_tmp, "pvs0", *shlex.split("--rate 200 --profile fatigue --rbp 12"))
    cfg = write_config(short_tmp, influx.url, influx.database,
                       {"bench1": str(sim.link), **hung_ports})  # fmt: skip
    daemon = DaemonProcess(cfg, asyncio_debug=True)
    try:
        sim.wait_listening()
        time.sleep(8)  # two or more rounds of each hung open
        sim.stop()
        time.sleep(0.5)
        asked = time.monotonic()
        assert daemon.stop() == 0, daemon.log()
        stop_s = time.monotonic() - asked
    finally:
        sim.kill()
        daemon.kill()
    log = daemon.log()
    figure(f"stopped {stop_s:.1f} s after SIGTERM with two ports still hanging")

    valid = [t for t in sim.truth() if t["kind"] == "sample" and t["delivered"] and t["valid"]]
    rows = {r["seq"]: r for r in query_samples(influx, "bench1")}
    assert len(valid) > 1000
    assert sorted(rows) == [t["seq"] for t in valid], "each sample exactly once, nothing else"
    errors_ms = [abs(rows[t["seq"]]["time"] - t["host_ns"]) / 1e6 for t in valid]
    p50, p99, worst = (quantile(errors_ms, 0.5), quantile(errors_ms, 0.99), max(errors_ms))
    figure(f"bench1 beside two hung ports: timestamp error median {p50:.2f} ms, "
           f"p99 {p99:.2f} ms, worst {worst:.0f} ms over {len(valid)} samples")  # fmt: skip
    # As test_record_pvs holds a device alone to: a hung open on the loop made it seconds.
    assert p50 < 5 and p99 < 50
    for name in hung_ports:
        assert f"{name}: port unavailable" in log, log
    assert not query_samples(influx, "negotiates_never")
    assert not query_samples(influx, "accepts_never")
