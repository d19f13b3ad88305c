"""InfluxDB's v2 write API (bucket, org, token) through influxdb-client's async client.

``InfluxDBClientAsync`` (aiohttp) sends each body once, with no batching or retries of
its own: the outbox and the writer keep doing those, for both APIs alike. The
writer calls ``write`` from its worker thread, so this client runs an event loop of
its own on that thread (one request at a time, one kept-alive session), and turns
the library's answers into the writer's terms: a ``Response`` with the status, or
``InfluxUnavailable`` when there was no answer.

Only writing: queries (``pvlog report --session``) speak InfluxQL, the v1 API, which
InfluxDB 2.x also serves for a bucket mapped to a database.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from daemon.influx.client import InfluxUnavailable, Response


class InfluxV2:
    def __init__(
        self,
        url: str,
        *,
        org: str,
        bucket: str,
        token: str | None,
        timeout_s: float = 10.0,
        ca_file: str | Path | None = None,
    ) -> None:
        self.url = url
        self.org = org
        self.bucket = bucket
        self._token = token or ""
        self._timeout_ms = int(timeout_s * 1000)
        self._ca_file = None if ca_file is None else str(ca_file)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    def __repr__(self) -> str:  # never the token
        return f"InfluxV2({self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def write(self, body: bytes, *, timeout_s: float | None = None) -> Response:
        """POST ``body`` (line protocol, ns), within ``timeout_s`` if shorter than the
        client's. Raises ``InfluxUnavailable`` with no answer."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(asyncio.wait_for(self._write(body), timeout_s))
        except TimeoutError as exc:
            raise InfluxUnavailable(f"{self.url}: no answer within {timeout_s:.1f} s") from exc

    async def _write(self, body: bytes) -> Response:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url,
                token=self._token,
                org=self.org,
                timeout=self._timeout_ms,
                ssl_ca_cert=self._ca_file,
            )
        try:
            await self._client.write_api().write(
                bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            return Response(int(exc.status or 0), str(exc.body or exc.reason or ""))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxUnavailable(f"{self.url}: {exc!r}") from exc
        return Response(204, "")

    def ensure_database(self, *, timeout_s: float | None = None) -> None:
        """A v2 bucket is made by its administrator, with its retention: never here."""

    def close(self) -> None:
        """Close the session on a thread of its own (the caller may be running a loop)."""
        loop, client = self._loop, self._client
        self._loop = self._client = None
        if loop is None:
            return

        def finish() -> None:
            if client is not None:
                loop.run_until_complete(client.close())
            loop.close()

        closer = threading.Thread(target=finish, name="influx-v2-close")
        closer.start()
        closer.join()
