"""The InfluxDB sink: each chunk's records as line protocol, handed to the batcher.

The batcher commits them to the outbox; the writer sends them on. The session tag
is read from the shared session state at each chunk, and a session switch makes a
new series encoder (its prefix carries the tag).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from daemon.influx import schema
from daemon.influx.lineprotocol import SampleLines
from daemon.pipeline import Chunk
from daemon.sessions.state import SessionState

LinesOut = Callable[[list[str]], None]
MarkedOut = Callable[[list[str], str, int], None]
"""Lines, the run/device they are of and the journal record they came from."""


class InfluxSink:
    def __init__(
        self,
        device: str,
        session: SessionState,
        out: LinesOut,
        *,
        static_tags: Mapping[str, str] | None = None,
        marked: MarkedOut | None = None,
    ) -> None:
        self.device = device
        self._marked = marked
        """Where a journaled chunk's lines go (with its mark), so the outbox commits
        the mark with them."""
        self._session = session
        self._out = out
        self._static_tags = dict(static_tags or {})
        self._name = ""
        self._samples: SampleLines | None = None

    def take(self, chunk: Chunk) -> None:
        name, run = self._session.name, self._session.run
        encoder = self._samples
        if encoder is None or name != self._name:
            self._name = name
            encoder = self._samples = schema.sample_lines(self.device, name, self._static_tags, run)
        samples = chunk.samples
        lines = (
            encoder.encode_columns(samples.time_ns, samples.seq, samples.flags,
                                   samples.fields, samples.columns)
            if samples
            else []
        )  # fmt: skip
        of = chunk.session or name
        if chunk.events:
            lines += [schema.event_line(self.device, of, e, run) for e in chunk.events]
        if chunk.inflations:
            lines += [schema.inflation_line(self.device, of, i, run) for i in chunk.inflations]
        if chunk.mark and self._marked is not None:
            self._marked(lines, f"{run}/{self.device}", chunk.mark)
        elif lines:
            self._out(lines)
