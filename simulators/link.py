"""Transports for simulated devices: a pseudo-terminal or a TCP port.

Like a real UART, a link sends whether or not anyone listens; bytes sent while no
one has the port open are not delivered (``send`` says so, for the truth file).
Every byte arriving from the reader is counted: pvlog must send none.

The pty is put in raw mode at creation (no echo, no CR/LF translation), before any
reader can open it, and its master in packet mode, so that it hears when the reader
flushes its input: pyserial does as it opens a port, and what was sent before then is
gone, so a reader counts as listening (what is sent is delivered) only from then on.
``unplug`` closes it as a yanked USB adapter would, and removes the optional stable
``link`` path (a symlink, like ``/dev/serial/by-id/...``) as udev does; a replug makes
a new pty and the link again, pointing to it.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import fcntl
import os
import socket
import struct
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path

MAX_PENDING = 1 << 20
SETTLE_S = 0.5
"""A TCP client counts as listening this long after it connected: pyserial discards what
its socket holds as it opens one, and the link cannot see when that is done."""
FLUSH_WAIT_S = 2.0
"""How long a pty link waits for a new reader's flush before taking it as opened."""
DRAIN_STALL_S = 10.0
"""A reader that takes nothing for this long is gone or stuck: a replay stops waiting
for it (a paused pvlog resumes within a commit's time)."""
DRAIN_EMPTY_S = 0.2
"""Nothing left for this long is drained. The kernel moves a pty's bytes to its reader's
queue from a work queue of its own: on a busy machine that can wait tens of ms, and two
empty looks 20 ms apart once let a replay close its pty on its last sentence."""


class Link(abc.ABC):
    """What the simulator runner needs from a transport."""

    rx_bytes = 0
    overruns = 0
    plugged = False
    on_receive: Callable[[bytes], None] | None = None
    """Called with what the host wrote (an instrument that answers requests)."""

    @property
    @abc.abstractmethod
    def listening(self) -> bool:
        """Someone has the port open: what is sent now is delivered."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """What a reader opens: a pty path or a ``socket://`` URL."""

    @abc.abstractmethod
    def send(self, data: bytes) -> bool:
        """Send ``data``; False if nobody was listening (not delivered)."""

    @abc.abstractmethod
    def backlog(self) -> int:
        """Bytes sent but not yet taken by the reader: past ``MAX_PENDING``, ``send``
        drops (an overrun, as a real UART's would); a replay waits below it instead."""

    def unread(self) -> int:
        """Bytes sent that the reader has not taken yet, as far as the link can see."""
        return self.backlog()

    async def reader_settled(self, stopping: asyncio.Event) -> None:
        """Wait for a reader to open the port and finish opening it (``listening``, as
        each link means it): what is sent before then may be thrown away by the reader's
        own opening (pyserial flushes the input when it opens a port)."""
        while not self.listening and not stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the link learns of a reader by polling, too

    async def drained(self, stall_s: float = DRAIN_STALL_S) -> None:
        """Wait until the reader has taken everything sent, or has taken nothing for
        ``stall_s``: closing the port earlier loses what it still holds (the end of a
        replay, to a reader paused by a flood). Nothing left is seen for ``DRAIN_EMPTY_S``,
        looked at every 20 ms: bytes pass the kernel's buffers in steps."""
        last, since, empty = -1, time.monotonic(), 0
        while self.listening and empty * 0.02 < DRAIN_EMPTY_S:
            left = self.unread()
            empty = empty + 1 if left == 0 else 0
            if left != last:
                last, since = left, time.monotonic()
            elif left and time.monotonic() - since >= stall_s:
                return
            await asyncio.sleep(0.02)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    def unplug(self) -> None:
        """Go away as a yanked cable does."""

    @abc.abstractmethod
    def close(self) -> None: ...

    async def replug(self) -> None:
        if not self.plugged:
            await self.start()


class PtyLink(Link):
    def __init__(self, link: str | None = None) -> None:
        self.link = Path(link) if link else None
        self._master: int | None = None
        self._path = ""
        self._opened_at: float | None = None
        """When the reader was first seen to have the port open (monotonic)."""
        self._pending = bytearray()
        self._watch: asyncio.Task[None] | None = None
        self._plugs = 0
        """Counts plug-ins: a watcher cancelled by ``unplug`` knows its pty is gone."""
        self.plugged = False
        self.flushed = asyncio.Event()
        """The reader flushed its input since it opened the port (the master in packet
        mode hears of it): it has finished opening, and keeps what is sent from now on."""

    @property
    def address(self) -> str:
        return self._path

    @property
    def listening(self) -> bool:
        """A reader has the port open and has finished opening it: it has flushed its
        input (pyserial does, so pvlog), or has had ``FLUSH_WAIT_S`` to do so. Before
        then what is sent is not delivered: the reader's opening may throw it away."""
        if self._opened_at is None:
            return False
        return self.flushed.is_set() or time.monotonic() - self._opened_at >= FLUSH_WAIT_S

    def _reader_open(self) -> None:
        if self._opened_at is None:
            self._opened_at = time.monotonic()

    async def start(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._path = os.ttyname(slave)
        os.close(slave)  # the slave path lives as long as the master is open
        fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(master, False)
        self._master = master
        self._plugs += 1
        self.plugged = True
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._path)
            tmp.replace(self.link)
        self._watch = asyncio.create_task(self._watch_reader(), name="pty watch")

    async def _watch_reader(self) -> None:
        """Track whether a reader has the slave open, and count what it sends.

        With no slave open, reading the master fails with EIO at once; with one
        open, it would block. So poll while nobody listens, and wait for bytes
        while somebody does.
        """
        loop = asyncio.get_running_loop()
        master, plug = self._master, self._plugs
        assert master is not None
        readable = asyncio.Event()
        while True:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                self._reader_open()
                readable.clear()
                loop.add_reader(master, readable.set)
                try:
                    await asyncio.wait_for(readable.wait(), 0.05)
                except TimeoutError:
                    pass
                finally:
                    # Cancelled by unplug, this runs later: by then ``master``'s number
                    # may be another descriptor's (a reader's port), not to be touched.
                    if plug == self._plugs and self._master == master:
                        loop.remove_reader(master)
                continue
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                self._opened_at = None
                self.flushed.clear()
                self._pending.clear()
                await asyncio.sleep(0.02)
                continue
            self._reader_open()  # a packet: it has the port open
            if data[0] != termios.TIOCPKT_DATA:  # a control packet: the reader's doing
                if data[0] & termios.TIOCPKT_FLUSHREAD:
                    self.flushed.set()
                continue
            data = data[1:]
            self.rx_bytes += len(data)
            if self.on_receive is not None:
                self.on_receive(data)

    def send(self, data: bytes) -> bool:
        if self._master is None or not self.listening:
            return False
        if self._pending:
            self._queue(data)
            return True
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return False
        if n < len(data):
            self._queue(data[n:])
        return True

    def backlog(self) -> int:
        return len(self._pending)

    def unread(self) -> int:
        """The link's queue and what waits in the terminal for the reader (FIONREAD
        on the slave side, opened for the question only)."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
            finally:
                os.close(fd)
            waiting = int(struct.unpack("i", raw)[0])
        except OSError:
            waiting = 1  # cannot tell: not drained (the reader's leaving ends the wait)
        return len(self._pending) + waiting

    def _queue(self, data: bytes) -> None:
        if len(self._pending) + len(data) > MAX_PENDING:
            self.overruns += 1
            return
        first = not self._pending
        self._pending += data
        if first and self._master is not None:
            asyncio.get_running_loop().add_writer(self._master, self._flush)

    def _flush(self) -> None:
        assert self._master is not None
        try:
            n = os.write(self._master, self._pending)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._pending)
        del self._pending[:n]
        if not self._pending:
            asyncio.get_running_loop().remove_writer(self._master)

    def unplug(self) -> None:
        """The adapter yanked: its pty goes, and so does its stable path, as udev removes
        a device's ``/dev/serial/by-id`` link (were it left, a reader retrying it could
        open whatever pty another process makes next with the old number)."""
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.link.is_symlink():
                    self.link.unlink()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_writer(self._master)
            loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        self._plugs += 1
        self._pending.clear()
        self._opened_at = None
        self.flushed.clear()
        self.plugged = False

    def close(self) -> None:
        self.unplug()


class TcpLink(Link):
    """Serves the device to one TCP client at a time (pyserial ``socket://host:port``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected_at = 0.0
        self.plugged = False

    @property
    def address(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        """A client connected ``SETTLE_S`` ago or more, and still there: before then,
        what is sent is not delivered (its opening may discard it)."""
        connected = self._writer is not None and not self._writer.is_closing()
        return connected and time.monotonic() - self._connected_at >= SETTLE_S

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        sock: socket.socket = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.plugged = True

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None and not self._writer.is_closing():
            writer.close()  # one reader at a time, like a serial port
            return
        self._writer = writer
        self._connected_at = time.monotonic()
        try:
            while data := await reader.read(65536):
                self.rx_bytes += len(data)
                if self.on_receive is not None:
                    self.on_receive(data)
        except OSError:
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()

    def send(self, data: bytes) -> bool:
        if not self.listening:
            return False
        assert self._writer is not None
        transport = self._writer.transport
        if transport.get_write_buffer_size() > MAX_PENDING:
            self.overruns += 1
            return True
        self._writer.write(data)
        return True

    def backlog(self) -> int:
        return 0 if self._writer is None else self._writer.transport.get_write_buffer_size()

    def unread(self) -> int:
        """The transport's buffer and what the kernel holds unacknowledged (SIOCOUTQ)."""
        if self._writer is None:
            return 0
        waiting = 0
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                waiting = struct.unpack("i", raw)[0]
        return self.backlog() + waiting

    def unplug(self) -> None:
        """A yanked cable: what is on its way is lost (a reset, not a goodbye)."""
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None
        self._close_server()

    def close(self) -> None:
        """The device switched off: what was sent still reaches the reader, then EOF."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._close_server()

    def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.plugged = False
