"""A private Mosquitto (Debian's package) on a free loopback port, for tests.

It can be stopped and started again on the same port, as a broker restart is.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class PrivateMosquitto:
    """``tls=(cert, key, ca)`` serves MQTT over TLS; ``users`` ({name: password}) turns
    anonymous access off."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        *,
        tls: tuple[Path, Path, Path] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.users = users or {}
        self.url = f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "mosquitto.conf"
        # As root, mosquitto would drop to its own user, who cannot read a test's private
        # temporary directory (certificates, password file): keep the test's user.
        text = f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\npersistence false\n"
        text += f"log_dest file {self.root / 'mosquitto.log'}\n"
        if self.tls:
            cert, key, ca = self.tls
            text += f"certfile {cert}\nkeyfile {key}\ncafile {ca}\n"
        if self.users:
            passwords = self.root / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(passwords), user, password],
                    check=True,
                    capture_output=True,
                )
            passwords.chmod(0o644)
            text += f"allow_anonymous false\npassword_file {passwords}\n"
        else:
            text += "allow_anonymous true\n"
        conf.write_text(text)
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log()}") from None
                time.sleep(0.05)
            else:
                return
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        path = self.root / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
