"""Runs a simulated device in real time on a link, with a truth file and a control channel.

The device samples on its own schedule (its true time advances with the host's
monotonic clock); each tick sends every sample that fell due in one write, as a
device's UART output arrives at a USB-serial adapter in bursts. The truth file
gets one JSON line per piece sent: what it is, when it was taken (``host_ns``), when
it was written to the link (``sent_ns``), whether it is valid, and whether anyone was
listening (``delivered``).

Control channel: JSON lines on a Unix socket, one reply line per command:
``{"cmd": "status"}``, ``{"cmd": "faults", "bad_checksum": 0.1, ...}``,
``{"cmd": "stall", "seconds": 2}``, ``{"cmd": "unplug"}``, ``{"cmd": "replug"}``,
``{"cmd": "reboot"}``, ``{"cmd": "stop"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from simulators.device import Emission
from simulators.faults import Faults
from simulators.link import Link

log = logging.getLogger(__name__)

TICK_S = 0.005


class _Settings(Protocol):
    @property
    def rate_hz(self) -> float: ...


class SimDevice(Protocol):
    """What the runner needs of a device model (PvsDevice, LbxDevice)."""

    faults: Faults
    seq: int
    clock_us0: int

    @property
    def s(self) -> _Settings: ...
    def step(self) -> list[Emission]: ...
    def idle(self, dt: float) -> None: ...
    def reboot(self, new_t0_us: int | None = None) -> list[Emission]: ...


class Simulator:
    def __init__(
        self,
        device: SimDevice,
        link: Link,
        *,
        truth: IO[str] | None = None,
        control_path: str | None = None,
        wait_listener: bool = True,
        duration_s: float | None = None,
        tick_s: float = TICK_S,
    ) -> None:
        self.device = device
        self.tick_s = tick_s
        self.link = link
        self.truth = truth
        self.control_path = control_path
        self.wait_listener = wait_listener
        self.duration_s = duration_s
        self.stopping = asyncio.Event()
        self.sim_s = 0.0
        self.stall_until = 0.0
        self.counts = {"samples": 0, "delivered": 0, "undelivered": 0, "corrupted": 0}
        self._wall0 = 0
        self._pending: list[Emission] = []

    async def run(self, on_ready: Callable[[Simulator], None] | None = None) -> None:
        """Serve until stopped; ``on_ready`` is called once the port can be opened."""
        loop = asyncio.get_running_loop()
        answer = getattr(self.device, "answer", None)
        if answer is not None:  # an instrument that is asked: it answers as it hears
            self.link.on_receive = lambda data: self._answer(answer(data))
        await self.link.start()
        control = None
        if self.control_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.control_path)
            control = await asyncio.start_unix_server(self._control, self.control_path)
        if on_ready is not None:
            on_ready(self)
        if self.wait_listener:
            await self.link.reader_settled(self.stopping)
        self._wall0 = time.time_ns()
        start = loop.time()
        self._take(self.device.reboot(self.device.clock_us0))
        dt = 1.0 / self.device.s.rate_hz
        try:
            while not self.stopping.is_set():
                now = loop.time() - start
                if self.duration_s is not None and now >= self.duration_s:
                    break
                while self.sim_s + dt <= now:
                    self.sim_s += dt
                    if self.sim_s <= self.stall_until:
                        self.device.idle(dt)
                    else:
                        self._take(self.device.step())
                self._send()
                await asyncio.sleep(self.tick_s)
        finally:
            # Switched off: a request heard from now on is not answered (an answer sent
            # while the port closes would be lost on the way, yet in the truth as sent).
            self.link.on_receive = None
            self._send()
            # Like a UART, the last bytes sent are on the wire before the device goes
            # off: closing a pty discards what its reader has not taken, so wait until
            # it has (however late a loaded machine lets it read), not a fixed time.
            await self.link.drained()
            if control is not None:
                control.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.control_path or "")
            self.link.close()
            if self.truth is not None:
                self.truth.flush()

    def _answer(self, emissions: list[Emission]) -> None:
        if emissions:
            self._take(emissions)
            self._send()

    def _take(self, emissions: list[Emission]) -> None:
        """Queue what the device sent, stamped with when it was taken (true host time)."""
        host_ns = self._wall0 + int(self.sim_s * 1e9)
        for e in emissions:
            e.truth["host_ns"] = host_ns
            for sample in e.truth.get("samples", ()):  # a block: each sample has its own
                sample["host_ns"] = host_ns - sample.pop("ago_ns")
        self._pending.extend(emissions)

    def _send(self) -> None:
        if not self._pending:
            return
        data = b"".join(e.data for e in self._pending)
        delivered = self.link.send(data) if data else False
        sent_ns = time.time_ns()
        lines = []
        for e in self._pending:
            t = e.truth
            t["delivered"] = delivered and bool(e.data)
            t["sent_ns"] = sent_ns  # on the wire: what a reader can stamp at best
            kind = t.get("kind")
            if kind in ("sample", "block"):
                n = len(t["samples"]) if kind == "block" else 1
                self.counts["samples"] += n
                if not t["valid"]:
                    self.counts["corrupted"] += n
                self.counts["delivered" if t["delivered"] else "undelivered"] += n
            t["raw"] = e.data.decode("latin-1")
            lines.append(json.dumps(t, separators=(",", ":")))
        self._pending.clear()
        if self.truth is not None:
            self.truth.write("\n".join(lines) + "\n")
            self.truth.flush()

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = await self.command(json.loads(line))
                except (ValueError, TypeError, KeyError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def command(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Act on one control message; returns the reply."""
        cmd = msg.get("cmd")
        if cmd == "status":
            return {"ok": True, **self.status()}
        if cmd == "faults":
            changes = {k: v for k, v in msg.items() if k != "cmd"}
            self.device.faults = self.device.faults.updated(changes)
            return {"ok": True}
        if cmd == "stall":
            # In the device's own time: however late a loaded machine runs this loop,
            # the device is silent for exactly that long of its time.
            self.stall_until = self.sim_s + float(msg["seconds"])
            return {"ok": True}
        if cmd == "unplug":
            self.link.unplug()
            return {"ok": True}
        if cmd == "replug":
            await self.link.replug()
            return {"ok": True, "address": self.link.address}
        if cmd == "reboot":
            self._take(self.device.reboot())
            return {"ok": True}
        if cmd == "stop":
            self.stopping.set()
            return {"ok": True}
        raise ValueError(f"unknown command {cmd!r}")

    def status(self) -> dict[str, Any]:
        return {
            "address": self.link.address,
            "listening": self.link.listening,
            "rx_bytes": self.link.rx_bytes,
            "overruns": self.link.overruns,
            "seq": self.device.seq,
            **self.counts,
            # What an asked instrument heard: every request, and what it could not take.
            **{
                k: getattr(self.device, k)
                for k in ("asked", "ignored_bytes", "unknown_requests")
                if hasattr(self.device, k)
            },
        }


def control_request(
    path: str | Path, msg: dict[str, Any], timeout_s: float = 5.0
) -> dict[str, Any]:
    """Send one control message to a running simulator and return its reply (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, Any] = json.loads(buf)
    return reply
