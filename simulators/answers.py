"""A polled instrument's recording, played back as the instrument: each request heard
again gets the answer that followed it in the recording (``pvlog replay`` of a file
with a ``written`` channel).

A streaming device's bytes can be replayed on their own clock; a polled one's cannot:
its answers came because pvlog asked, when it asked. So the replay waits to be asked.
The recording is a sequence of exchanges, each request pvlog wrote and the bytes read
after it until the next; a request heard is answered with the next exchange that
began with the same request. One that went unanswered in the recording (a timeout)
goes unanswered again, and an answer that was wrong (a bad CRC) is wrong again: the
daemon on the other end sees the session as it was. When the exchanges run out, the
port closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import zstandard
from mcap.exceptions import McapError
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader

from simulators.link import Link

DAMAGED = (McapError, EOFError, struct.error, zstandard.ZstdError, ValueError, KeyError)


IoMessages = Callable[[Path], Iterator[tuple[str, int, bytes]]]
"""A recording's ``raw`` and ``written`` messages: (topic, log time, bytes), in file order.
``pvlog replay`` passes pvlog's own reader, which reads past a damaged chunk."""


def io_messages(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """As far as the file reads as a stream: to its end, or to the first damage."""
    topics: dict[int, str] = {}
    with path.open("rb") as f, contextlib.suppress(*DAMAGED):
        for record in StreamReader(f, emit_chunks=False).records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                topic = topics.get(record.channel_id)
                if topic in ("raw", "written"):
                    yield topic, record.log_time, record.data


def has_writes(path: Path, messages: IoMessages = io_messages) -> bool:
    """Whether pvlog asked the device (the recording has a ``written`` channel)."""
    return any(topic == "written" for topic, _, _ in messages(path))


def exchanges(paths: list[Path], messages: IoMessages = io_messages) -> list[tuple[bytes, bytes]]:
    """(request, the bytes read after it until the next request), in recording order."""
    out: list[tuple[bytes, bytearray]] = []
    for path in paths:
        for topic, _, data in messages(path):
            if topic == "written":
                out.append((data, bytearray()))
            elif out:  # bytes before the first request were nobody's answer
                out[-1][1].extend(data)
    return [(request, bytes(answer)) for request, answer in out]


class AnswerReplay:
    def __init__(self, recorded: list[tuple[bytes, bytes]], link: Link) -> None:
        self.recorded = recorded
        self.link = link
        self.requests = frozenset(request for request, _ in recorded)
        self.stopping = asyncio.Event()
        self.answered = 0
        self.sent_bytes = 0
        self.unknown_bytes = 0
        """Bytes heard that begin no recorded request (dropped, one at a time)."""
        self._cursor = 0
        self._heard = bytearray()

    async def run(self, *, wait_listener: bool = True) -> None:
        self.link.on_receive = self._hear
        await self.link.start()
        print(self.link.address, flush=True)
        if wait_listener:
            await self.link.reader_settled(self.stopping)
        try:
            await self.stopping.wait()
        finally:
            await self.link.drained()
            self.link.close()

    def _hear(self, data: bytes) -> None:
        self._heard += data
        while self._heard and not self.stopping.is_set():
            heard = bytes(self._heard)
            request = next((r for r in self.requests if heard.startswith(r)), None)
            if request is None:
                if any(r.startswith(heard) for r in self.requests):
                    return  # the rest of a request is on its way
                del self._heard[0]
                self.unknown_bytes += 1
                continue
            del self._heard[: len(request)]
            self._answer(request)

    def _answer(self, request: bytes) -> None:
        for i in range(self._cursor, len(self.recorded)):
            if self.recorded[i][0] == request:
                break
        else:
            self.stopping.set()  # asked past the recording's end: the instrument goes
            return
        answer = self.recorded[i][1]
        self._cursor = i + 1
        if answer:
            self.link.send(answer)
            self.sent_bytes += len(answer)
        self.answered += 1
        if self._cursor == len(self.recorded):
            self.stopping.set()
