"""The serial port layer: opens any pyserial URL quietly and reads it through the event loop.

Quietly means the two things that reset or disturb lab devices are never done:
modem lines (DTR/RTS) are left as the OS found them, and HUPCL is cleared so that
closing the port does not drop DTR either. Reads are event driven (``add_reader``
on the port's descriptor, one ``os.read`` of whatever is there), so an idle port
costs no CPU and a busy one costs one syscall per chunk, not per byte.

Writes go through ``write``, which refuses anything the driver did not declare in
its ``allowed_writes``; a streaming driver declares nothing, so nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

import serial
import serial.rfc2217

log = logging.getLogger(__name__)

READ_SIZE = 65536

ChunkHandler = Callable[[bytes, int], None]
"""Called with each chunk read and its receive time (UTC, ns)."""


class PortError(Exception):
    """The port could not be opened or was lost."""


class WriteRefused(PortError):
    """A write that the driver did not declare was asked for: it is not sent."""


class SerialPort:
    """One serial port, read through an asyncio event loop.

    ``open`` then ``start``; ``lost`` completes when the port goes away (unplugged,
    peer closed, read error) and carries the reason; ``close`` is idempotent.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        allowed_writes: frozenset[bytes] = frozenset(),
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.allowed_writes = allowed_writes
        self.bytes_read = 0
        self.bytes_written = 0
        self._serial: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_chunk: ChunkHandler | None = None
        self._thread: threading.Thread | None = None
        self._stop_thread = threading.Event()
        self.lost: asyncio.Future[str] | None = None

    def open(self) -> None:
        """Open the port without touching DTR/RTS. Raises ``PortError``."""
        try:
            ser = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.baudrate)
            # pyserial's open() drives DTR and RTS to its own defaults (asserted); some
            # devices reset on that edge. Shadowing the two update hooks on this
            # instance makes open() leave the lines exactly as they were.
            ser._update_dtr_state = _leave_alone
            ser._update_rts_state = _leave_alone
            ser.timeout = 0
            ser.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"cannot open {self.url}: {exc}") from exc
        self._serial = ser
        fd = _descriptor(ser)
        if fd is not None:
            _clear_hupcl(fd)
            os.set_blocking(fd, False)
        self._fd = fd

    def start(self, on_chunk: ChunkHandler) -> None:
        """Begin delivering chunks to ``on_chunk`` from the running event loop."""
        if self._serial is None:
            raise RuntimeError("start() before open()")
        self._loop = asyncio.get_running_loop()
        self._on_chunk = on_chunk
        self.lost = self._loop.create_future()
        if self._fd is not None:
            self._loop.add_reader(self._fd, self._readable)
        else:
            # No descriptor to watch (rfc2217:// and other protocol handlers do
            # their own I/O in pyserial): a thread blocks in read() and hands
            # chunks to the loop.
            self._thread = threading.Thread(
                target=self._read_thread, name=f"port {self.url}", daemon=True
            )
            self._thread.start()

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            # EIO: the pty's other side closed or the USB device went away.
            self._set_lost(f"read failed: {errno.errorcode.get(exc.errno or 0, exc)}")
            return
        rx_time_ns = time.time_ns()
        if not data:
            self._set_lost("end of file (peer closed)")
            return
        self.bytes_read += len(data)
        assert self._on_chunk is not None
        self._on_chunk(data, rx_time_ns)

    def _read_thread(self) -> None:
        ser = self._serial
        ser.timeout = 0.2
        loop = self._loop
        assert loop is not None
        while not self._stop_thread.is_set():
            try:
                data = ser.read(READ_SIZE)
            except (serial.SerialException, OSError) as exc:
                loop.call_soon_threadsafe(self._set_lost, f"read failed: {exc}")
                return
            if data:
                loop.call_soon_threadsafe(self._deliver, data, time.time_ns())

    def _deliver(self, data: bytes, rx_time_ns: int) -> None:
        self.bytes_read += len(data)
        if self._on_chunk is not None:
            self._on_chunk(data, rx_time_ns)

    def _set_lost(self, why: str) -> None:
        self._detach()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(why)

    def write(self, data: bytes) -> None:
        """Send ``data`` only if the driver declared exactly these bytes."""
        if data not in self.allowed_writes:
            raise WriteRefused(f"refused to send {data!r} to {self.url}: not a declared request")
        if self._serial is None:
            raise PortError(f"{self.url} is not open")
        self._serial.write(data)
        self.bytes_written += len(data)

    def _detach(self) -> None:
        if self._fd is not None and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._fd)
        self._stop_thread.set()

    def close(self) -> None:
        """Stop reading and close the port; safe to call twice."""
        self._detach()
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
        self._fd = None
        if self.lost is not None and not self.lost.done():
            self.lost.set_result("closed")


def _leave_alone() -> None:
    """Stands in for pyserial's DTR/RTS update on open: do nothing to the lines."""


def _descriptor(ser: Any) -> int | None:
    """The descriptor that carries the device's bytes as they are, if there is one."""
    if isinstance(ser, serial.rfc2217.Serial):
        return None  # telnet framing: pyserial must decode it
    try:
        fd = ser.fileno()
    except (AttributeError, NotImplementedError, serial.SerialException):
        return None
    return fd if isinstance(fd, int) else None


def _clear_hupcl(fd: int) -> None:
    """Keep DTR up when the port is closed (HUPCL would drop it, resetting some devices)."""
    try:
        attrs = termios.tcgetattr(fd)
    except termios.error:
        return  # not a terminal (a socket://): no modem lines at all
    if attrs[2] & termios.HUPCL:
        attrs[2] &= ~termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
