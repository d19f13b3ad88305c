"""A private VictoriaMetrics on a free loopback port: a real server of the InfluxDB v2
write API (``/api/v2/write``), which InfluxDB 1.6 does not have."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

VICTORIA = "/usr/bin/victoria-metrics"


class PrivateVictoria:
    def __init__(
        self, root: Path, *, tls: tuple[Path, Path] | None = None, ca: Path | None = None
    ) -> None:
        self.root = root
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._tls = tls
        self._context = ssl.create_default_context(cafile=ca) if tls else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            VICTORIA,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.root / 'data'}",
            "-retentionPeriod=100y",
        ]
        if self._tls:
            args += ["-tls", f"-tlsCertFile={self._tls[0]}", f"-tlsKeyFile={self._tls[1]}"]
        self.log = (self.root / "victoria.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self._get("/health") == b"OK":
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(
            "victoria-metrics did not start: " + (self.root / "victoria.log").read_text()
        )

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=10, context=self._context) as r:  # noqa: S310
            return bytes(r.read())

    def export(self, metric: str) -> list[dict[str, Any]]:
        """Every series of ``metric``, with its values and (ms) timestamps."""
        self._get("/internal/force_flush")
        body = self._get(f"/api/v1/export?match[]={metric}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root / "data", ignore_errors=True)
