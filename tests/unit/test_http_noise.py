"""Malformed requests said at most once a minute (shrunk here): the first at once, the
rest of the minute in one line with their count, a quiet minute resets it, and the
close says what is left; each line is one line, whatever bytes the peer sent."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from daemon.service.http_noise import BadRequests

EVERY_S = 0.3


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "daemon.service.http_noise"]


async def test_the_first_at_once_then_one_line_a_minute_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    noise = BadRequests(every_s=EVERY_S)
    began = time.monotonic()
    for i in range(5):
        noise.count("10.0.0.9", f"Bad status line 'x{i}'\n\n  b'\\x16\\x03'\n  ^")
    assert said(caplog) == [
        "http: 1 malformed request refused (1 since the start); the last from 10.0.0.9: "
        "Bad status line 'x0' b'\\x16\\x03' ^"
    ]
    while len(said(caplog)) < 2:
        assert time.monotonic() - began < 30, "the minute's count never said"
        await asyncio.sleep(0.02)
    assert time.monotonic() - began >= EVERY_S, "not before the minute is out"
    assert said(caplog)[1].startswith("http: 4 malformed requests refused (5 since the start)")
    await asyncio.sleep(EVERY_S * 2)  # a quiet minute
    assert len(said(caplog)) == 2
    noise.count(None, "Invalid header")
    assert said(caplog)[2].endswith("(6 since the start); the last from an unknown peer: "
                                    "Invalid header")  # fmt: skip
    noise.count("10.0.0.9", "x" * 1000)
    noise.close()
    assert len(said(caplog)) == 4 and said(caplog)[3].endswith("x" * 160)
    assert noise.total == 7
    assert all("\n" not in line for line in said(caplog))
