"""``pvlog replay FILE``: a recording's raw bytes served again on a pty or TCP port.

Every ``raw`` chunk goes out when its receive time comes round again (relative to
the first, divided by ``--rate``), or back to back with ``--rate max``; so
``pvlog run`` on the other end sees the device as it was, and QA can compare the
result with the original session. A polled device's recording (one with a
``written`` channel) is played as the instrument instead: it answers each request
as it was answered then (``simulators.answers``). Finished and cut-short files both play: the
file is read as a stream (a cut-short one has no summary).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mcap.writer import MCAP0_MAGIC

from simulators.answers import AnswerReplay, IoMessages, exchanges, has_writes, io_messages
from simulators.link import Link, PtyLink, TcpLink

SPIN_NS = 2_000_000
MAX_BACKLOG = 1 << 16
"""Bytes a replay lets wait for the reader before it waits too: whatever the rate, a
slow reader slows the replay down and no byte is dropped."""
"""The last stretch before a chunk is due is waited out by yielding, not by a timer."""
"""After a reader opens the port, wait this long before sending (it is still configuring it)."""


def raw_chunks(path: Path, messages: IoMessages = io_messages) -> Iterator[tuple[int, bytes]]:
    """(receive time ns, bytes) of every ``raw`` message, in file order, as far as it reads."""
    for topic, log_time, data in messages(path):
        if topic == "raw":
            yield log_time, data


def _not_a_recording(path: Path) -> str | None:
    """Why ``path`` cannot be replayed at all, in one line; None if it is an MCAP file."""
    try:
        with path.open("rb") as f:
            head = f.read(len(MCAP0_MAGIC))
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    if head != MCAP0_MAGIC:
        return "empty file: not a recording" if not head else "not an MCAP recording"
    return None


def window(
    chunks: list[tuple[int, bytes]], start_s: float, end_s: float | None
) -> list[tuple[int, bytes]]:
    """The chunks from ``start_s`` to ``end_s`` seconds after the recording's first."""
    if not chunks:
        return []
    t0 = chunks[0][0]
    lo = t0 + int(start_s * 1e9)
    hi = None if end_s is None else t0 + int(end_s * 1e9)
    return [(t, d) for t, d in chunks if t >= lo and (hi is None or t <= hi)]


class Replay:
    def __init__(
        self, chunks: list[tuple[int, bytes]], link: Link, *, rate: float | None, loop: bool
    ) -> None:
        self.chunks = chunks
        self.link = link
        self.rate = rate
        """Speed-up; None: as fast as the reader takes it."""
        self.loop = loop
        self.stopping = asyncio.Event()
        self.sent_bytes = 0
        self.sent_chunks = 0
        self.lateness_ns: list[int] = []
        """How late each chunk went out against its schedule (paced replays)."""

    async def run(self, *, wait_listener: bool = True, progress: bool = False) -> None:
        await self.link.start()
        print(self.link.address, flush=True)
        if wait_listener:
            await self.link.reader_settled(self.stopping)
        total = len(self.chunks)
        try:
            while not self.stopping.is_set():
                await self._play_once(progress, total)
                if not self.loop:
                    break
        finally:
            if not self.stopping.is_set():
                await self.link.drained()  # the reader takes the last bytes before the pty goes
            self.link.close()

    async def _play_once(self, progress: bool, total: int) -> None:
        if not self.chunks:
            return
        first = self.chunks[0][0]
        start = time.monotonic_ns()
        for i, (t, data) in enumerate(self.chunks):
            if self.stopping.is_set():
                return
            if self.rate is not None:
                due = start + int((t - first) / self.rate)
                await _until(due)
                self.lateness_ns.append(time.monotonic_ns() - due)
            elif i % 64 == 0:
                await asyncio.sleep(0)
            while self.link.backlog() > MAX_BACKLOG:
                if self.stopping.is_set():
                    return
                await asyncio.sleep(0.001)  # the reader is slower: wait, never overrun
            while not self.link.send(data):
                if self.stopping.is_set():
                    return
                await asyncio.sleep(0.01)  # nobody listening: wait rather than lose it
            self.sent_bytes += len(data)
            self.sent_chunks += 1
            if progress and i % 100 == 0:
                print(f"\r{i + 1}/{total} chunks", end="", file=sys.stderr, flush=True)
        if progress:
            print(f"\r{total}/{total} chunks", file=sys.stderr, flush=True)


async def _until(due_ns: int) -> None:
    """Sleep until ``due_ns`` (monotonic): the loop's timer for the bulk, then yield
    until the moment comes, since a timer wake-up can be a millisecond or more late."""
    wait = due_ns - time.monotonic_ns()
    if wait > SPIN_NS:
        await asyncio.sleep((wait - SPIN_NS) / 1e9)
    while time.monotonic_ns() < due_ns:  # noqa: ASYNC110 - a deliberate spin, 2 ms at most
        await asyncio.sleep(0)


DESCRIPTION = (
    "Serve a recording's raw bytes on a pty (default) or TCP port. Prints the port to open "
    "on the first line of standard output."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        type=Path,
        help="an MCAP recording (finished or cut short), or a directory of one device's "
        "recordings (a session split over files), played in order",
    )
    p.add_argument("--tcp", metavar="HOST:PORT", help="serve on TCP instead of a pty")
    p.add_argument("--link", metavar="PATH", help="keep a symlink to the pty here")
    p.add_argument("--rate", default="1", help="speed-up factor, or 'max' (default 1)")
    p.add_argument("--loop", action="store_true", help="start again at the end")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the recording")
    p.add_argument("--end", type=float, default=None, help="seconds into the recording")
    p.add_argument("--no-wait", action="store_true", help="do not wait for a reader")
    p.add_argument(
        "--allow-damaged",
        action="store_true",
        help="play a damaged recording, its damaged chunks left out (what was lost is said)",
    )


Accept = Callable[[list[Path], bool], bool]
"""Whether to play these files (``--allow-damaged`` given or not): pvlog's check that
none is damaged, said on stderr."""


def run(
    args: argparse.Namespace, messages: IoMessages = io_messages, accept: Accept | None = None
) -> int:
    rate: float | None
    try:
        rate = None if args.rate == "max" else float(args.rate)
    except ValueError:
        rate = -1.0
    if rate is not None and not rate > 0:
        print("pvlog replay: --rate must be a positive number or 'max'", file=sys.stderr)
        return 2
    files = sorted(args.file.rglob("*.mcap")) if args.file.is_dir() else [args.file]
    if not files:
        print(f"pvlog replay: {args.file}: a directory with no recording in it", file=sys.stderr)
        return 1
    for f in files:
        why = _not_a_recording(f)
        if why is not None:
            print(f"pvlog replay: {f}: {why}", file=sys.stderr)
            return 1
    if accept is not None and not accept(files, args.allow_damaged):
        return 1
    if any(has_writes(f, messages) for f in files):  # a polled device: it answers when asked
        return _answer(files, _link(args), messages, wait=not args.no_wait)
    # A directory: its recordings in name (= time) order, a session split over several
    # files played as one.
    every = [c for f in files for c in raw_chunks(f, messages)]
    chunks = window(every, args.start, args.end)
    if not chunks:
        print(f"pvlog replay: {args.file}: no raw data in that window", file=sys.stderr)
        return 2
    replay = Replay(chunks, _link(args), rate=rate, loop=args.loop)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, replay.stopping.set)
        await replay.run(wait_listener=not args.no_wait, progress=sys.stderr.isatty())

    asyncio.run(run())
    late = sorted(replay.lateness_ns)
    p99 = late[int(len(late) * 0.99)] / 1e6 if late else 0.0
    print(
        f"replayed {replay.sent_chunks} chunks, {replay.sent_bytes} bytes; "
        f"pacing p99 {p99:.2f} ms late",
        file=sys.stderr,
        flush=True,
    )
    return 0


def _link(args: argparse.Namespace) -> Link:
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        return TcpLink(host or "127.0.0.1", int(port))
    return PtyLink(args.link)


def _answer(files: list[Path], link: Link, messages: IoMessages, *, wait: bool) -> int:
    """A polled device's recording: each request heard is answered as it was then
    (``simulators.answers``); pacing and windows do not apply, the asker sets the pace."""
    replay = AnswerReplay(exchanges(files, messages), link)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, replay.stopping.set)
        await replay.run(wait_listener=wait)

    asyncio.run(run())
    print(
        f"answered {replay.answered} of {len(replay.recorded)} recorded requests, "
        f"{replay.sent_bytes} bytes; {replay.unknown_bytes} bytes heard that were no request",
        file=sys.stderr,
        flush=True,
    )
    return 0
