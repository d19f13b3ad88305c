"""Faults of the peer's that only a route finds (a body that is not what its headers
say, a peer gone mid-body, a path the filesystem refuses, a token that is not text):
counted and said as malformed requests, never a traceback, so that a web page or a
scanner cannot fill the disk the recordings share with the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.integration.test_access_guard import started
from tests.integration.test_http_limits import connect, metric, read_to_end, serving

pytestmark = pytest.mark.integration

COMMAND = b'{"action": "stop"}'
FAULTS = [
    # A gzip body that is not gzip.
    b"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Encoding: gzip\r\nContent-Length: 18\r\nConnection: close\r\n\r\n" + COMMAND,
    # A path too long for any file name (as 200 <img> tags on another site's page send).
    b"GET /static/" + b"a" * 300 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
]


async def test_faults_only_a_route_finds_are_counted_never_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(tmp_path) as served:
        for i in range(100):
            sock = await connect(served.port, FAULTS[i % len(FAULTS)])
            try:
                answer = await read_to_end(sock)
            finally:
                sock.close()
            assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 404 ")), answer[:200]
        # A peer gone mid-body: half a command, then the connection shut.
        for _ in range(20):
            sock = await connect(served.port, FAULTS[0].replace(b"Content-Encoding: gzip\r\n",
                                                                b"")[:-5])  # fmt: skip
            await asyncio.sleep(0)
            sock.close()
        total = 120
        for _ in range(200):
            if served.server.connections.bad_requests.total >= total:
                break
            await asyncio.sleep(0.05)
        assert served.server.connections.bad_requests.total == total
        assert await metric(served.url, "pvlog_http_bad_requests_total") == total
    text = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "Traceback" not in text and not any(r.exc_info for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(text) < 30_000


@pytest.mark.parametrize("where", ["Authorization: Bearer ", "Cookie: pvlog_token="])
async def test_a_token_that_is_not_text_is_refused_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    server, url = await started(tmp_path, allow_remote=True, token="s3cret")
    try:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + where.encode()
                     + b"s3\xff\xfecret\r\nConnection: close\r\n\r\n")  # fmt: skip
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    finally:
        await server.close()
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert not any(r.exc_info for r in caplog.records)
