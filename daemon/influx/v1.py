"""InfluxDB's v1 API over HTTP(S) (``POST /write``, ``/query``, ``/ping``), standard
library only; the v2 write API is ``daemon.influx.v2``.

Blocking on purpose: the daemon calls it from its writer's worker thread, one
request at a time, over one kept-alive connection. influxdb-client's batching
``WriteApi`` is not used: it runs threads of its own, blocks on close and drops
data when its retries run out; our outbox does the batching and the keeping.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

from daemon.influx.client import InfluxUnavailable, Response


class InfluxV1:
    def __init__(
        self,
        url: str,
        database: str,
        *,
        timeout_s: float = 10.0,
        ca_file: str | Path | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.database = database
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self._timeout = timeout_s
        self._tls = ssl.create_default_context(cafile=ca_file) if self._https else None
        self._headers: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None

    def write(self, body: bytes, *, timeout_s: float | None = None) -> Response:
        """POST lines with ns precision, within ``timeout_s`` if shorter than the client's.
        Raises ``InfluxUnavailable`` when there is no answer."""
        query = urllib.parse.urlencode({"db": self.database, "precision": "ns"})
        return self._request(
            "POST", f"/write?{query}", body, "text/plain; charset=utf-8", timeout_s
        )

    def query(
        self, q: str, params: dict[str, str] | None = None, *, timeout_s: float | None = None
    ) -> Any:
        """Run InfluxQL; returns the decoded JSON. Raises on a non-2xx answer.

        ``params`` are bound to ``$name`` in ``q``: values never become query text.
        """
        form_fields = {"db": self.database, "q": q, "epoch": "ns"}
        if params:
            form_fields["params"] = json.dumps(params)
        form = urllib.parse.urlencode(form_fields).encode()
        resp = self._request("POST", "/query", form, "application/x-www-form-urlencoded", timeout_s)
        if resp.status // 100 != 2:
            raise InfluxUnavailable(f"query failed: HTTP {resp.status}: {resp.message}")
        return json.loads(resp.body)

    def ensure_database(self, *, timeout_s: float | None = None) -> None:
        """``CREATE DATABASE`` is idempotent in InfluxDB 1.x."""
        self.query(f'CREATE DATABASE "{self.database}"', timeout_s=timeout_s)

    def ping(self) -> bool:
        try:
            return self._request("GET", "/ping", None, None).status == 204
        except InfluxUnavailable:
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        timeout_s: float | None = None,
    ) -> Response:
        headers = {**self._headers, **({"Content-Type": content_type} if content_type else {})}
        timeout = self._timeout if timeout_s is None else min(self._timeout, timeout_s)
        for attempt in (1, 2):
            conn = self._connection()
            conn.timeout = timeout  # for a connection made now
            if conn.sock is not None:  # and for a kept-alive one
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, self._base + path, body=body, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the server closed fails once on reuse;
                # one fresh attempt tells that apart from a server that is down.
                fresh = isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError)
                if attempt == 1 and fresh:
                    continue
                raise InfluxUnavailable(f"{self.url}: {exc or type(exc).__name__}") from exc
            if resp.will_close:
                self.close()
            return Response(resp.status, text)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn
