"""MCAP's records as bytes: the constants and parsers ``daemon.recordings.scan`` reads with.

Format: https://mcap.dev/spec (record opcodes, little-endian, strings as u32 length +
UTF-8). The writer (``daemon.recordings.mcap_file``) has its own: it builds, this reads.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from pathlib import Path

import zstandard

from drivers.errors import PvlogError

MAGIC = b"\x89MCAP0\r\n"
HEADER, FOOTER, SCHEMA, CHANNEL, MESSAGE, CHUNK, MESSAGE_INDEX, CHUNK_INDEX = range(1, 9)
STATISTICS, METADATA, DATA_END = 0x0B, 0x0C, 0x0F
KNOWN = frozenset(range(0x01, 0x10))
FOOTER_SIZE = 1 + 8 + 20
MAX_CHUNK_BYTES = 1 << 30
"""A chunk claiming to hold more than this when decompressed is a damaged head, not data."""
HEAD = struct.Struct("<BQ")
CHUNK_FIXED = struct.Struct("<QQQI")
MESSAGE_HEAD = struct.Struct("<HIQQ")
U16, U32, U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
COMPRESSIONS = (b"zstd", b"")
SIGNATURES = tuple(U32.pack(len(c)) + c for c in COMPRESSIONS)
SIGNATURE_AT = 1 + 8 + CHUNK_FIXED.size
"""Where a chunk record's compression name begins: found by it, a chunk is found."""


class Damaged(PvlogError):
    """A record that does not parse (internal)."""


def string(buf: bytes | memoryview, at: int) -> tuple[str, int]:
    (n,) = U32.unpack_from(buf, at)
    end = at + 4 + n
    if end > len(buf):
        raise Damaged("a string runs past its record")
    return bytes(buf[at + 4 : end]).decode(), end


def map_(buf: bytes | memoryview, at: int) -> tuple[dict[str, str], int]:
    (n,) = U32.unpack_from(buf, at)
    end = at + 4 + n
    if end > len(buf):
        raise Damaged("a map runs past its record")
    out, at = {}, at + 4
    while at < end:
        key, at = string(buf, at)
        value, at = string(buf, at)
        out[key] = value
    return out, end


def unpacked(body: memoryview) -> bytes:
    """A chunk's records, decompressed and checked against its CRC."""
    _start, _end, raw_size, crc = CHUNK_FIXED.unpack_from(body, 0)
    compression, at = string(body, CHUNK_FIXED.size)
    (n,) = U64.unpack_from(body, at)
    packed = bytes(body[at + 8 : at + 8 + n])
    if raw_size > MAX_CHUNK_BYTES:
        raise Damaged("its size is not plausible")
    if compression == "zstd":
        records = zstandard.ZstdDecompressor().decompress(packed, max_output_size=raw_size)
    elif compression == "":
        records = packed
    else:
        raise Damaged(f"compression {compression!r} is not one pvlog reads")
    if len(records) != raw_size or (crc and zlib.crc32(records) != crc):
        raise Damaged("its CRC does not check")
    return records


def mapped(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, mapped rather than read: a recording may be hundreds of MB."""
    with path.open("rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return b""


def header_reads(path: Path) -> bool:
    """Whether the file's first record, after the magic, is a header that reads."""
    with path.open("rb") as f:
        head = f.read(len(MAGIC) + HEAD.size + 4096)
    at = len(MAGIC)
    try:
        opcode, length = HEAD.unpack_from(head, at)
        body = head[at + HEAD.size : at + HEAD.size + length]
        _, end = string(body, 0)
        _, end = string(body, end)
    except (Damaged, struct.error, UnicodeDecodeError):
        return False
    return bool(opcode == HEADER and end == length)
