"""rfc2217:// through a real RFC 2217 port server (pyserial's PortManager) in front of a pty.

The device side counts every byte the server would pass on to the serial line:
telnet negotiation and port settings are not device bytes, and pvlog sends no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path

import pytest
import serial
import serial.rfc2217

from drivers.port import SerialPort
from simulators.link import PtyLink

pytestmark = pytest.mark.integration


class PtySerial(serial.Serial):  # type: ignore[misc]
    """A pty has no modem lines; the port manager asks for them, so report them low."""

    cts = dsr = ri = cd = False


class Rfc2217Server:
    """One client; network <-> pty, the way ser2net or a terminal server does it."""

    def __init__(self, device_path: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.device_path = device_path
        self.to_device = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        ser = PtySerial(self.device_path, timeout=0.05)
        manager = serial.rfc2217.PortManager(ser, _Writer(conn))
        conn.settimeout(0.05)
        with contextlib.closing(conn), contextlib.closing(ser):
            while not self.stop.is_set():
                data = ser.read(4096)
                if data:
                    conn.sendall(b"".join(manager.escape(data)))
                try:
                    net = conn.recv(4096)
                except TimeoutError:
                    continue
                if not net:
                    return
                for byte in manager.filter(net):
                    self.to_device += len(byte)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


class _Writer:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.conn.sendall(data)


async def test_rfc2217_reads_and_sends_nothing(tmp_path: Path) -> None:
    link = PtyLink(str(tmp_path / "dev"))
    await link.start()
    server = Rfc2217Server(str(tmp_path / "dev"))
    port = SerialPort(f"rfc2217://127.0.0.1:{server.port}")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, port.open)  # negotiation is blocking
    got: list[bytes] = []
    port.start(lambda data, t: got.append(data))
    for _ in range(100):
        if link.listening:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    payload = b"$PVS,1,2,3*00\r\n" * 50 + b"\xff\xfe binary \xff"
    assert link.send(payload)
    for _ in range(100):
        if b"".join(got) == payload:
            break
        await asyncio.sleep(0.05)
    port.close()
    server.close()
    assert b"".join(got) == payload  # IAC (0xff) bytes unescaped by pyserial
    assert server.to_device == 0
    assert link.rx_bytes == 0
    link.close()
