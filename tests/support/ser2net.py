"""A real serial-device server: Debian's ``ser2net``, bridging a pty (a simulator's) to a
loopback TCP port, raw (``socket://``) or with RFC 2217 (``rfc2217://``), as a lab's
network serial server does. Its own config file, pid file and log, in a temporary
directory; no UUCP locks; stopped and started again by the tests."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port

SER2NET = shutil.which("ser2net") or "/usr/sbin/ser2net"


class Ser2net:
    def __init__(self, tmp: Path, device: Path, *, rfc2217: bool) -> None:
        self.port = free_port()
        self.url = f"{'rfc2217' if rfc2217 else 'socket'}://127.0.0.1:{self.port}"
        accepter = f"{'telnet(rfc2217),' if rfc2217 else ''}tcp,127.0.0.1,{self.port}"
        self.config = tmp / "ser2net.yaml"
        self.config.write_text(
            "connection: &bench\n"
            f"  accepter: {accepter}\n"
            f"  connector: serialdev,{device.resolve()},9600n81,local\n"
            "  options:\n"
            "    kickolduser: true\n"
        )
        self.log = tmp / "ser2net.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start, and return once it accepts connections."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SER2NET, "-n", "-u", "-c", str(self.config), "-P", str(self.config) + ".pid"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        raise AssertionError(f"ser2net did not listen: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
