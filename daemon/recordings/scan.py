"""An MCAP file read record by record, past damage: what it holds, and what it lost.

Why not ``mcap.stream_reader``: it stops at the first bad byte, so 16 bytes overwritten
in the middle of a recording hid every chunk after them, though each chunk carries its
own CRC and length and is followed by its message indexes (each message's time), and a
whole file ends with an index of every chunk. Here a chunk whose CRC does not check,
that does not decompress, or whose records do not parse is skipped whole, and what it
held is said from the index: the time range and the message count (``Loss``). Where a
record's own head is damaged (its length no longer says where the next one begins),
reading resumes at the next chunk found by its signature; the file's chunk index, if
its end is whole, says what lay between.

A file that simply ends (``kill -9``, a full disk: no data end, no footer) is
``cut_short``, not damaged: what it holds reads to its last whole chunk, as ever.

Format: https://mcap.dev/spec (little-endian; strings are a u32 length and UTF-8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import zstandard

from daemon.recordings.findings import Findings, Loss
from daemon.recordings.mcap_bytes import (
    CHANNEL,
    CHUNK,
    CHUNK_FIXED,
    CHUNK_INDEX,
    DATA_END,
    FOOTER,
    FOOTER_SIZE,
    HEAD,
    KNOWN,
    MAGIC,
    MESSAGE,
    MESSAGE_HEAD,
    MESSAGE_INDEX,
    METADATA,
    SCHEMA,
    SIGNATURE_AT,
    SIGNATURES,
    STATISTICS,
    U16,
    U32,
    U64,
    Damaged,
    map_,
    mapped,
    string,
    unpacked,
)
from drivers.errors import PvlogError


class Metadata(NamedTuple):
    name: str
    values: dict[str, str]


class ChannelInfo(NamedTuple):
    id: int
    topic: str
    encoding: str
    schema: bytes


class Message(NamedTuple):
    channel: ChannelInfo
    log_time: int
    data: bytes


Item = Metadata | ChannelInfo | Message


class _Index(NamedTuple):
    """A chunk as the file's index (or its message indexes) describes it."""

    start_ns: int | None
    end_ns: int | None
    messages: int | None


class Scanner:
    """One pass over one file; ``items()`` yields as it reads, ``findings`` fills as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.findings = Findings(path)
        self._data = mapped(path)
        self._schemas: dict[int, bytes] = {}
        self._channels: dict[int, ChannelInfo] = {}
        self._orphans = 0
        """Messages on a channel never declared (its record damaged)."""
        self._last_ns: int | None = None
        """The latest message read: where a loss of unknown extent begins."""
        self._summary: dict[int, _Index] | bool | None = False
        """The file's chunk index, once read (False: not yet)."""
        self._total: int | None = None
        """The messages the file's statistics say it holds."""

    def items(self) -> Iterator[Item]:
        data = self._data
        if data[: len(MAGIC)] != MAGIC:  # readers refuse such a file first (``problem``)
            self.findings.losses.append(Loss("not an MCAP recording", None, None, None))
            return
        pos, size = len(MAGIC), len(data)
        self._summary_chunks()  # its channels, should the data's own be damaged
        while True:
            if pos + HEAD.size > size:  # the data ends without its end record
                self.findings.cut_short = True
                break
            opcode, length = HEAD.unpack_from(data, pos)
            body_at, end = pos + HEAD.size, pos + HEAD.size + length
            if opcode not in KNOWN or opcode == FOOTER:
                pos = self._resync(pos, f"byte {pos}: no record begins there")
                if pos < 0:
                    break
                continue
            if end > size:  # a record cut short: the file ends, or a length is damaged
                if opcode == CHUNK and self.next_chunk(pos) < 0 and not self._whole():
                    self.findings.cut_short = True
                    break
                pos = self._resync(pos, f"byte {pos}: a record longer than the file")
                if pos < 0:
                    break
                continue
            body = memoryview(data)[body_at:end]
            if opcode == DATA_END:
                self._check_end(end)
                break
            try:
                if opcode == CHUNK:
                    yield from self._chunk(pos, body, end)
                else:
                    item = self._record(opcode, body)
                    if item is not None:
                        yield item
            except _Loss as exc:
                self.findings.losses.append(exc.loss)
            pos = end
        if self._orphans:
            self.findings.losses.append(
                Loss("messages on a channel whose definition is damaged", None, None, self._orphans)
            )
        self._count_unknown()

    def _count_unknown(self) -> None:
        """One loss of unknown size is the file's message count (its statistics) less
        what was read and what the other losses held."""
        losses, total = self.findings.losses, self._total
        unknown = [k for k, loss in enumerate(losses) if loss.messages is None]
        if total is None or len(unknown) != 1:
            return
        left = total - self.findings.messages - sum(x.messages or 0 for x in losses)
        if left >= 0:
            losses[unknown[0]] = losses[unknown[0]]._replace(messages=left)

    # -- records ------------------------------------------------------------

    def _record(self, opcode: int, body: memoryview) -> Item | None:
        """A record outside a chunk; a damaged one is said and skipped."""
        try:
            return self._parse(opcode, body)
        except (Damaged, struct.error, UnicodeDecodeError) as exc:
            where = f"a record ({opcode:#04x}) does not read: {exc}"
            raise _Loss(Loss(where, None, None, 0)) from None

    def _parse(self, opcode: int, body: memoryview | bytes) -> Item | None:
        if opcode == SCHEMA:
            (sid,) = U16.unpack_from(body, 0)
            _, at = string(body, 2)
            _, at = string(body, at)
            (n,) = U32.unpack_from(body, at)
            self._schemas[sid] = bytes(body[at + 4 : at + 4 + n])
        elif opcode == CHANNEL:
            cid, sid = struct.unpack_from("<HH", body, 0)
            topic, at = string(body, 4)
            encoding, at = string(body, at)
            map_(body, at)
            info = ChannelInfo(cid, topic, encoding, self._schemas.get(sid, b""))
            self._channels[cid] = info
            return info
        elif opcode == METADATA:
            name, at = string(body, 0)
            values, _ = map_(body, at)
            return Metadata(name, values)
        elif opcode == MESSAGE:
            cid, _seq, log_time, _pub = MESSAGE_HEAD.unpack_from(body, 0)
            channel = self._channels.get(cid)
            if channel is None:
                self._orphans += 1
                return None
            self.findings.messages += 1
            self._last_ns = max(self._last_ns or 0, log_time)
            return Message(channel, log_time, bytes(body[MESSAGE_HEAD.size :]))
        return None

    def _chunk(self, pos: int, body: memoryview, end: int) -> Iterator[Item]:
        """A chunk's records, all or none: a chunk that fails anywhere is lost whole."""
        try:
            items = list(self._chunk_records(unpacked(body)))
        except (Damaged, struct.error, UnicodeDecodeError, zstandard.ZstdError) as exc:
            index = self._message_indexes(end) or _told(body)
            where = f"chunk at byte {pos}: {exc}"
            raise _Loss(Loss(where, index.start_ns, index.end_ns, index.messages)) from None
        yield from items

    def _chunk_records(self, records: bytes) -> Iterator[Item]:
        pos, size = 0, len(records)
        before = self.findings.messages, self._orphans
        try:
            while pos < size:
                opcode, length = HEAD.unpack_from(records, pos)
                end = pos + HEAD.size + length
                if end > size or opcode not in KNOWN:
                    raise Damaged(f"a record at {pos} inside it does not read")  # noqa: TRY301
                item = self._parse(opcode, memoryview(records)[pos + HEAD.size : end])
                if item is not None:
                    yield item
                pos = end
        except BaseException:
            self.findings.messages, self._orphans = before
            raise

    def _message_indexes(self, at: int) -> _Index | None:
        """What the message indexes right after a chunk say of it (None: none read)."""
        data, found = self._data, False
        times: list[int] = []
        try:
            while at + HEAD.size <= len(data):
                opcode, length = HEAD.unpack_from(data, at)
                if opcode != MESSAGE_INDEX or at + HEAD.size + length > len(data):
                    break
                (n,) = U32.unpack_from(data, at + HEAD.size + 2)
                if 6 + n > length or n % 16:
                    break
                pairs = struct.unpack_from(f"<{n // 8}Q", data, at + HEAD.size + 6)
                times += pairs[0::2]
                found = True
                at += HEAD.size + length
        except struct.error:
            pass
        if not found:
            return None
        return _Index(min(times, default=None), max(times, default=None), len(times))

    # -- damage of a record's head, and the file's end ----------------------------

    def _plausible_chunk(self, pos: int) -> bool:
        """Whether a chunk record plausibly begins at ``pos`` (its compression's name
        where it belongs, its times in order)."""
        data = self._data
        if pos < len(MAGIC) or pos + SIGNATURE_AT + 8 > len(data) or data[pos] != CHUNK:
            return False
        at = pos + SIGNATURE_AT
        if not any(data[at : at + len(s)] == s for s in SIGNATURES):
            return False
        start_ns, end_ns, _raw, _crc = CHUNK_FIXED.unpack_from(data, pos + HEAD.size)
        return bool(start_ns <= end_ns)

    def next_chunk(self, pos: int) -> int:
        """The first plausible chunk after ``pos``; -1 if none."""
        data, at = self._data, pos + 1
        while True:
            hits = [h for s in SIGNATURES if (h := data.find(s, at)) >= 0]
            if not hits:
                return -1
            candidate = min(hits) - SIGNATURE_AT
            if candidate > pos and self._plausible_chunk(candidate):
                return candidate
            at = min(hits) + 1

    def _resync(self, pos: int, what: str) -> int:
        """The next chunk after ``pos`` (-1: none); what lay between is lost."""
        nxt = self.next_chunk(pos)
        upto = nxt if nxt >= 0 else len(self._data)
        chunks = self._summary_chunks()
        if chunks is None:
            next_ns = CHUNK_FIXED.unpack_from(self._data, nxt + HEAD.size)[0] if nxt >= 0 else None
            self.findings.losses.append(
                Loss(f"{what}; bytes {pos}-{upto} skipped", self._last_ns, next_ns, None)
            )
        else:
            lost = [(offset, i) for offset, i in sorted(chunks.items()) if pos <= offset < upto]
            self.findings.losses += [
                Loss(f"{what}; chunk at byte {offset} skipped", i.start_ns, i.end_ns, i.messages)
                for offset, i in lost
            ] or [Loss(f"{what}; bytes {pos}-{upto} skipped: no chunk among them", None, None, 0)]
        return nxt

    def _whole(self) -> bool:
        """Whether the file ends as a finished one does: then it was not cut short."""
        return self._data[-len(MAGIC) :] == MAGIC or self._summary_chunks() is not None

    def _summary_chunks(self) -> dict[int, _Index] | None:
        """The file's chunk index (offset -> chunk), if its end is whole."""
        if self._summary is False:
            self._summary = self._read_summary()
        return self._summary if isinstance(self._summary, dict) else None

    def _read_summary(self) -> dict[int, _Index] | None:
        data = self._data
        if len(data) < len(MAGIC) * 2 + FOOTER_SIZE or data[-len(MAGIC) :] != MAGIC:
            return None
        at = len(data) - len(MAGIC) - FOOTER_SIZE
        opcode, length = HEAD.unpack_from(data, at)
        if opcode != FOOTER or length != 20:
            return None
        summary_start, _offsets, _crc = struct.unpack_from("<QQI", data, at + 9)
        pos, out = summary_start, {}
        try:
            while len(MAGIC) <= pos < at:
                opcode, length = HEAD.unpack_from(data, pos)
                body = pos + HEAD.size
                if opcode == CHUNK_INDEX:
                    start_ns, end_ns, offset, _len = struct.unpack_from("<QQQQ", data, body)
                    (n,) = U32.unpack_from(data, body + 32)
                    first = min(U64.unpack_from(data, body + 38 + k)[0] for k in range(0, n, 10))
                    index = self._message_indexes(first) or _Index(None, None, None)
                    out[offset] = _Index(start_ns, end_ns, index.messages)
                elif opcode == STATISTICS:
                    (self._total,) = U64.unpack_from(data, body)
                elif opcode in (SCHEMA, CHANNEL):  # what a damaged definition said, again
                    self._parse(opcode, memoryview(data)[body : body + length])
                elif opcode not in KNOWN:
                    return None
                pos = body + length
        except (Damaged, struct.error, UnicodeDecodeError, ValueError):  # ValueError: min([])
            return None
        return out

    def _check_end(self, data_end: int) -> None:
        """After the data end: the summary and footer, which a whole file has."""
        if self._data[-len(MAGIC) :] != MAGIC or self._summary_chunks() is None:
            if len(self._data) > data_end:
                self.findings.end_damaged = f"bytes {data_end}-{len(self._data)}"
            else:
                self.findings.cut_short = True


class _Loss(PvlogError):
    """Carries what a skipped record held (internal)."""

    def __init__(self, loss: Loss) -> None:
        super().__init__(loss.where)
        self.loss = loss


def _told(body: memoryview) -> _Index:
    """What a damaged chunk's own head says of its time, if it is sane; count unknown."""
    try:
        start_ns, end_ns, _, _ = CHUNK_FIXED.unpack_from(body, 0)
    except struct.error:
        return _Index(None, None, None)
    return _Index(start_ns, end_ns, None) if 0 < start_ns <= end_ns else _Index(None, None, None)
