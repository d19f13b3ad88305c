"""One recording file, written from the recording's thread: encoded chunks in, on disk out.

Each file declares the recording's channels (``daemon.recordings.encoder``) as its
chunks first use them, so a file started by rotation or a new session reads on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from daemon.recordings.encoder import ChannelDef
from daemon.recordings.format import PROFILE
from daemon.recordings.mcap_file import ChunkBuffer, McapFile


class RecordingFile:
    def __init__(self, path: Path, metadata: Mapping[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.stream: IO[bytes] = path.open("xb")
        self.mcap = McapFile(self.stream, profile=PROFILE, library="pvlog")
        self.mcap.metadata("pvlog", dict(metadata))
        self._declared: set[int] = set()
        self._schemas: set[int] = set()
        self.flushed = False
        """Whether a chunk reached the disk: a file without one holds nothing readable."""

    def size(self) -> int:
        return self.stream.tell()

    def write(self, chunk: ChunkBuffer, channels: Sequence[ChannelDef]) -> None:
        """``chunk`` compressed and on disk when this returns, its channels declared first."""
        for c in channels:
            if c.id in chunk.index and c.id not in self._declared:
                if c.schema_id and c.schema_id not in self._schemas:
                    self.mcap.schema(c.schema_id, c.schema_name, c.schema_encoding, c.schema)
                    self._schemas.add(c.schema_id)
                self.mcap.channel(c.id, c.topic, c.encoding, c.schema_id)
                self._declared.add(c.id)
        self.mcap.write_chunk(chunk)
        self.stream.flush()
        self.flushed = True

    def close(self) -> None:
        self.mcap.finish()
        self.stream.close()
