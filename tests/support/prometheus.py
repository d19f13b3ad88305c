"""A private Prometheus (Debian's package) on a free loopback port, scraping every second."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class PrivatePrometheus:
    def __init__(self, root: Path, targets: list[str]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: pvlog\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.log = (root / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` gives now ([] until there is data)."""
        try:
            doc = self.get("/api/v1/query", query=promql)
        except OSError:
            return []  # not up yet
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def wait_for(self, promql: str, timeout_s: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.query(promql)
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"Prometheus gave nothing for {promql} in {timeout_s} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
