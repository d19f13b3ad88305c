"""``pvlog check-config --probe``: does each configured port carry the configured device?

A config can be valid and still record nothing: a wrong path is retried forever, and
``/dev/null`` opens. The probe reads each port for a few seconds through the same
port layer and driver as ``pvlog run``, and says per device what it decoded (samples,
identity, drops by reason) or exactly what is wrong. It writes nothing to a streaming
device; a polled one (modbus) is asked with its driver's own declared read requests,
as ``run`` asks it, and nothing else. Like ``run``, it leaves DTR and RTS alone. Then
it reaches InfluxDB and the broker the config names.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiomqtt

from daemon.acquisition.drop_watch import NOT_FRAMES
from daemon.acquisition.polling import poll
from daemon.config import Config, DeviceConfig
from daemon.mqtt.link import client as mqtt_client
from daemon.tools.ports import LATENCY_OK_MS, SYS_TTY, latency_timer_ms
from drivers import registry
from drivers.port import PortError, SerialPort
from drivers.records import DeviceInfo, Record, Sample, SampleBlock
from drivers.registry import Polled

PROBE_S = 3.0


@dataclass
class Finding:
    """One thing probed: a device, InfluxDB or the broker."""

    what: str
    ok: bool
    said: str
    details: dict[str, object] = field(default_factory=dict)
    warning: str = ""
    """Something to fix that does not fail the probe (a USB adapter's latency timer)."""

    def line(self) -> str:
        line = f"{'OK  ' if self.ok else 'FAIL'} {self.what}: {self.said}"
        return line + (f"\nWARN {self.what}: {self.warning}" if self.warning else "")


def _why_not_open(exc: PortError) -> str:
    """The port layer's error, said as what the user must fix."""
    cause = exc.__cause__
    code = getattr(cause, "errno", None)
    text = str(exc)
    if code == errno.ENOENT:
        return "no such port (`pvlog ports` lists this machine's)"
    if code == errno.EACCES:
        return "permission denied (is the user in the dialout group?)"
    if code == errno.EISDIR or "Inappropriate ioctl" in text:
        return "not a serial device (a file, a directory or /dev/null?)"
    if code == errno.EBUSY:
        return "busy: another program has it open"
    return text


async def probe_device(device: DeviceConfig, seconds: float = PROBE_S) -> Finding:
    what = f"device {device.name} ({device.driver} on {device.port})"
    spec = registry.driver(device.driver)
    parser = spec.parser(device.options())
    # Nothing is written while probing but a polled driver's own declared read requests.
    asks = bool(parser.allowed_writes)
    port = SerialPort(device.port, baudrate=device.baudrate, allowed_writes=parser.allowed_writes)
    try:
        port.open()
    except PortError as exc:
        return Finding(what, ok=False, said=_why_not_open(exc))
    got = {"bytes": 0, "samples": 0}
    identity: list[DeviceInfo] = []
    answered = asyncio.Event()

    def take(chunk: bytes, rx_time_ns: int) -> None:
        got["bytes"] += len(chunk)
        records(parser.feed(chunk, rx_time_ns))
        if asks and not cast(Polled, parser).awaiting:
            answered.set()

    def records(found: list[Record]) -> None:
        for r in found:
            if isinstance(r, SampleBlock):
                got["samples"] += len(r.device_time_us)
            elif isinstance(r, Sample):
                got["samples"] += 1
            elif isinstance(r, DeviceInfo):
                identity.append(r)

    asking = None
    try:
        port.start(take)
        assert port.lost is not None
        if asks:
            asking = asyncio.create_task(poll(cast(Polled, parser), port.write, answered,
                                              lambda _t, found: records(found),
                                              interval_s=device.poll_interval_ms / 1000,
                                              timeout_s=device.timeout_ms / 1000,
                                              retries=device.retries,
                                              stop=asyncio.Event()))  # fmt: skip
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(port.lost), seconds)
        ended = port.lost.result() if port.lost.done() else None
    finally:
        if asking is not None:
            asking.cancel()
            with contextlib.suppress(asyncio.CancelledError, PortError):
                await asking
        port.close()
    dropped = {k: v for k, v in parser.dropped.items() if v}
    details: dict[str, object] = {**got, "dropped": dropped, "bytes_written": port.bytes_written}
    if identity:
        info = identity[-1]
        details["identity"] = {"model": info.model, "serial": info.serial,
                               "firmware": info.firmware}  # fmt: skip
    drops = ", ".join(f"{k} {v}" for k, v in dropped.items()) or "none"
    warning = latency_warning(device, spec.clockless)
    if got["samples"]:
        who = f"{info.model} {info.serial}" if identity else "identity not yet seen"
        said = f"{got['samples']} samples in {seconds:g} s; {who}; dropped: {drops}"
        too_many = _too_many_drops(device, got["samples"], parser)
        if too_many:
            return Finding(what, ok=False, said=f"{said}; {too_many}", details=details,
                           warning=warning)  # fmt: skip
        return Finding(what, ok=True, said=said, details=details, warning=warning)
    if dropped.get("exception"):  # it answers, and says what it does not have
        said = (f"it answers with Modbus exceptions (a register or function it does not "
                f"have? unit_id {device.unit_id}?); dropped: {drops}")  # fmt: skip
    elif got["bytes"]:
        said = (f"{got['bytes']} bytes, none decode as {device.driver} (wrong driver or "
                f"baud rate {device.baudrate}?); dropped: {drops}")  # fmt: skip
    elif ended is not None:
        said = f"the port ended after {got['bytes']} bytes ({ended})"
    else:
        said = f"silent: no bytes in {seconds:g} s (device off, cable, or baud rate?)"
    return Finding(what, ok=False, said=said, details=details, warning=warning)


def _too_many_drops(device: DeviceConfig, samples: int, parser: object) -> str:
    """Why the share of lines or frames dropped is over ``max_drop_share`` ("": it is not)."""
    counts = getattr(parser, "dropped", {})
    lost = {k: v for k, v in counts.items() if k not in NOT_FRAMES and v}
    bad = sum(lost.values())
    if not bad or bad / (bad + samples) <= device.max_drop_share:
        return ""
    top = max(lost, key=lambda k: lost[k])
    example = getattr(parser, "examples", {}).get(top, b"")
    return (f"{bad / (bad + samples):.0%} of its lines or frames dropped (over max_drop_share "
            f"{device.max_drop_share:.0%}), mostly {top}"
            + (f", e.g. {example!r}" if example else ""))  # fmt: skip


def latency_warning(device: DeviceConfig, clockless: bool, sys_tty: Path = SYS_TTY) -> str:
    """A clockless device behind a USB adapter that holds short bursts for ms."""
    timer = latency_timer_ms(device.port, sys_tty)
    if not clockless or timer is None or timer <= LATENCY_OK_MS:
        return ""
    return (f"its USB adapter holds short bursts up to {timer} ms (latency_timer): its "
            f"samples are stamped that late; set it to 1 ms (docs/instruments.md)")  # fmt: skip


def probe_influx(config: Config) -> Finding:
    """Ping, then the database exists or can be created (v1), or the bucket exists (v2)."""
    c = config.influx
    what = f"InfluxDB {c.url}"
    context = ssl.create_default_context(cafile=c.ca_file) if c.url.startswith("https") else None
    headers: dict[str, str] = {}
    token = c.secret_token()
    if token:
        headers["Authorization"] = f"Token {token}"

    def get(path: str, query: Mapping[str, str] | None = None, method: str = "GET") -> str:
        url = c.url.rstrip("/") + path
        body = None
        if query and method == "POST":
            body = urllib.parse.urlencode(query).encode()
        elif query:
            url += "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
        with urllib.request.urlopen(req, timeout=c.timeout_s, context=context) as resp:  # noqa: S310
            return str(resp.read().decode())

    try:
        get("/ping")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Finding(what, ok=False, said=f"no answer to /ping: {_reason(exc)}")
    try:
        if c.api == "v2":
            try:
                listed = get("/api/v2/buckets", {"name": str(c.bucket), "org": str(c.org)})
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    return Finding(what, ok=False, said=f"the token is refused: {_reason(exc)}")
                if exc.code not in (400, 404):
                    raise
                said = "answers; it has no bucket API (a v2-compatible server): bucket not checked"
                return Finding(what, ok=True, said=said)
            found = json.loads(listed)
            if not found.get("buckets"):
                return Finding(what, ok=False, said=f"no bucket {c.bucket!r} in org {c.org!r}")
            return Finding(what, ok=True, said=f"answers; bucket {c.bucket!r} exists")
        names = json.loads(get("/query", {"q": "SHOW DATABASES"}))
        series = names["results"][0].get("series") or [{"values": []}]
        if [c.database] in series[0].get("values", []):
            return Finding(what, ok=True, said=f"answers; database {c.database!r} exists")
        get("/query", {"q": f'CREATE DATABASE "{c.database}"'}, method="POST")
        return Finding(what, ok=True, said=f"answers; database {c.database!r} created")
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError) as exc:
        return Finding(what, ok=False, said=f"answers /ping, but: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)


async def probe_broker(config: Config, timeout_s: float = 5.0) -> Finding:
    broker = config.mqtt.broker()
    what = f"MQTT broker {broker.url}"
    try:
        async with mqtt_client(broker, "probe", timeout=timeout_s):
            pass
    except (aiomqtt.MqttError, OSError) as exc:
        return Finding(what, ok=False, said=f"cannot connect: {exc}")
    return Finding(what, ok=True, said="connects")


async def probe(config: Config, seconds: float = PROBE_S) -> list[Finding]:
    """Every device at once (each for ``seconds``), then InfluxDB and the broker."""
    found = list(await asyncio.gather(*(probe_device(d, seconds) for d in config.device)))
    if not (config.live_enabled and config.mqtt.mode == "edge"):  # an edge writes no InfluxDB
        found.append(await asyncio.to_thread(probe_influx, config))
    if config.live_enabled:
        found.append(await probe_broker(config))
    return found
