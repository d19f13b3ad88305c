"""A private InfluxDB 1.x server: temporary directories, loopback, free ports.

For ``pvlog demo`` and the integration tests, which must never touch a system
InfluxDB. Uses Debian's ``influxd`` (package ``influxdb``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
{https}  max-body-size = 0

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def influxd_path() -> str | None:
    """``PVLOG_INFLUXD`` if set (an influxd installed elsewhere), else the PATH's, else
    Debian's."""
    given = os.environ.get("PVLOG_INFLUXD")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("influxd") or (
        "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None
    )


class PrivateInfluxd:
    """``with PrivateInfluxd() as db: db.url`` -- started, answering /ping, then stopped."""

    def __init__(
        self,
        root: Path | None = None,
        port: int | None = None,
        *,
        https: tuple[Path, Path, Path] | None = None,
        ports: Callable[[], int] | None = None,
    ) -> None:
        """``https=(certificate, key, CA)``: serve HTTPS (InfluxDB's https-enabled).
        ``ports``: where its ports come from (the tests hand out ports of their own)."""
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="pvlog-influxd-"))
        ports = ports or free_port
        self.port = port or ports()
        self._rpc_port = ports()
        self.https = https
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        exe = influxd_path()
        if exe is None:
            raise RuntimeError("influxd not found: install Debian's 'influxdb' package")
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "influxd.conf"
        https = (
            f'  https-enabled = true\n  https-certificate = "{self.https[0]}"\n'
            f'  https-private-key = "{self.https[1]}"\n'
            if self.https
            else ""
        )
        conf.write_text(
            _CONFIG.format(
                root=self.root, http_port=self.port, rpc_port=self._rpc_port, https=https
            )
        )
        log = (self.root / "influxd.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [exe, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.proc.returncode}: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping in {timeout_s} s: {self.log_tail()}")

    def ping(self) -> bool:
        tls = ssl.create_default_context(cafile=self.https[2]) if self.https else None
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1, context=tls) as resp:  # noqa: S310
                return bool(resp.status == 204)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it will not go; data stays on disk for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "influxd.log").read_text(errors="replace")[-n:]
        return ""

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateInfluxd:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
