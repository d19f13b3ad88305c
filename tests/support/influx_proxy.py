"""A fault-injecting HTTP proxy for InfluxDB on loopback: pass, answer 500, hang, or answer
slowly. It records every write it saw (time, mode, the status it gave, the body), so a test
can see the retry pacing and the order batches went in."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["pass", "error500", "hang", "slow"]


@dataclass
class Seen:
    at: float
    mode: str
    status: int
    body: bytes
    headers: dict[str, str]


class InfluxProxy:
    def __init__(self, upstream_port: int, *, slow_s: float = 2.0) -> None:
        self.upstream_port = upstream_port
        self.slow_s = slow_s
        self.mode: Mode = "pass"
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self._forward(self.rfile.read(length))

            def _forward(self, body: bytes) -> None:
                mode = proxy.mode
                is_write = self.path.startswith(("/write", "/api/v2/write"))
                if is_write and mode == "hang":
                    proxy._record(mode, 0, body, self.headers)
                    proxy._released.wait(30)  # accepted, never answered (until released)
                    self.close_connection = True
                    return
                if is_write and mode == "error500":
                    proxy._record(mode, 500, body, self.headers)
                    self._answer(500, b'{"error":"injected by the test proxy"}')
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    status, data = resp.status, resp.read()
                except OSError:  # InfluxDB itself is down: what a real proxy says
                    status, data = 502, b'{"error":"upstream unreachable"}'
                finally:
                    conn.close()
                if is_write:
                    proxy._record(mode, status, body, self.headers)
                    if mode == "slow":
                        time.sleep(proxy.slow_s)  # written upstream, answered late
                self._answer(status, data)

            def _answer(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True  # the client gave up waiting

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, mode: str, status: int, body: bytes, headers: Any) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), mode, status, body, dict(headers.items())))

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode != "hang":
            self._released.set()
        else:
            self._released.clear()

    def writes(self, mode: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.mode == mode]

    def __enter__(self) -> InfluxProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
