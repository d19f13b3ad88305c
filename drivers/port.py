"""The serial port layer: opens any pyserial URL quietly and reads it through the event loop.

Quietly means the two things that reset or disturb lab devices are never done:
modem lines (DTR/RTS) are left as the OS found them, and HUPCL is cleared so that
closing the port does not drop DTR either. Reads are event driven (``add_reader``
on the port's descriptor, one ``os.read`` of whatever is there), so an idle port
costs no CPU and a busy one costs one syscall per chunk, not per byte.

While bytes keep coming, a port is read once per ``read_interval_s`` (16 ms by
default, the latency timer FTDI adapters apply anyway) on a tick shared by every
port, so all busy ports are served in one wake-up of the loop; a tick that finds
nothing hands the port back to ``add_reader``, so an idle port costs nothing. On
this kind of machine a wake-up costs tens of microseconds of CPU whatever it does:
reading on every arrival spent more on waking than on decoding. A slow stream (small
reads) is read on a four times coarser shared tick (``SLOW_BYTES``).

Given a ``flow`` (back-pressure, ``daemon.acquisition.flow``), a port that finds the
pipeline full after a read stops reading until it has caught up: in a flood from a
pty, TCP or a replay, the bytes wait in the kernel and the sender waits, and nothing
is dropped from memory.

Writes go through ``write``, which refuses anything the driver did not declare in
its ``allowed_writes``; a streaming driver declares nothing, so nothing is sent.

``open`` and ``release`` (the blocking half of ``close``) wait on pyserial, seconds for
a network port that does not answer; a caller with an event loop runs them on a thread
(the daemon: ``daemon.acquisition.opening``). Everything else here is the loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import termios
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, Protocol

import serial
import serial.rfc2217

from drivers.errors import PvlogError

log = logging.getLogger(__name__)

READ_SIZE = 65536
READ_INTERVAL_S = 0.016
FLOOD_BYTES = 1024
"""A read this large means bytes arrive faster than ticks should wait for (a tty's
line buffer holds 4 KiB): such a port is read on every arrival instead."""
SLOW_BYTES = 128
"""A read smaller than this means a slow stream (under some 8 kB/s at the default
interval): such a port is read every ``SLOW_TICKS`` intervals instead, on a coarser
shared clock, so a device at 1-100 samples a second costs a few wake-ups a second, not
one per tick. Its bytes wait at most 64 ms (4 KiB of kernel buffer holds seconds of
them); the clock fit takes the earliest deliveries, so timestamps do not move."""
SLOW_TICKS = 4
IDLE_TICKS = 8
"""Empty ticks in a row after which a port goes back to waiting on its descriptor."""
EAGER_S = 1.0
"""For its first second open, a port is read as bytes arrive, not on ticks: a device
clock's fit starts from the first reads, and a read made at once bounds the clock's
offset within a block's time where a tick's read is up to an interval late. The fit
then holds that bound (``daemon.acquisition.clock``), and the ticks' shared wake-ups
take over."""

ChunkHandler = Callable[[bytes, int], None]
"""Called with each chunk read and its receive time (UTC, ns)."""


class FlowControl(Protocol):
    def full(self) -> bool:
        """Whether reading should pause now."""
        ...

    def wait(self, resume: Callable[[], None]) -> None:
        """Call ``resume`` once reading may go on."""
        ...


class PortError(PvlogError):
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
        read_interval_s: float = READ_INTERVAL_S,
        flow: FlowControl | None = None,
    ) -> None:
        self.url = url
        self.flow = flow
        self.paused = False
        self.read_interval_s = read_interval_s
        self._resume: asyncio.TimerHandle | None = None
        self._empty_ticks = 0
        self._eager_until = 0.0
        self.baudrate = baudrate
        self.allowed_writes = allowed_writes
        self.bytes_written = 0
        self._serial: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_chunk: ChunkHandler | None = None
        self._thread: threading.Thread | None = None
        self._stop_thread = threading.Event()
        self._sender: ThreadPoolExecutor | None = None
        """Writes of a port with no descriptor (their socket write can block)."""
        self._stopped = False
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
        fd = _descriptor(ser)
        if fd is not None:
            try:
                _configure_tty(fd)
                os.set_blocking(fd, False)
            except (termios.error, OSError) as exc:
                ser.close()
                raise PortError(f"cannot configure {self.url}: {exc}") from exc
        self._serial = ser
        self._fd = fd

    def start(self, on_chunk: ChunkHandler) -> None:
        """Begin delivering chunks to ``on_chunk`` from the running event loop."""
        if self._serial is None:
            raise RuntimeError("start() before open()")
        self._loop = asyncio.get_running_loop()
        self._on_chunk = on_chunk
        self.lost = self._loop.create_future()
        self._eager_until = self._loop.time() + EAGER_S
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
            if self.allowed_writes:
                self._sender = ThreadPoolExecutor(1, thread_name_prefix=f"port {self.url}")

    def _readable(self) -> None:
        """Bytes are waiting: read them; unless they come in floods, read on ticks from now."""
        got = self._read()
        if got and self.flow is not None and self.flow.full():
            self._pause()
        elif (
            got
            and got < FLOOD_BYTES
            and self.read_interval_s > 0
            and self._loop is not None
            and self._loop.time() >= self._eager_until
        ):
            assert self._fd is not None
            self._loop.remove_reader(self._fd)
            self._schedule_tick(slow=got < SLOW_BYTES)

    def _pause(self) -> None:
        """The pipeline is full: leave the bytes in the kernel until it has caught up."""
        assert self._fd is not None
        assert self._loop is not None
        assert self.flow is not None
        self._loop.remove_reader(self._fd)
        self.paused = True
        self.flow.wait(self._unpause)

    def _unpause(self) -> None:
        self.paused = False
        alive = self.lost is not None and not self.lost.done()
        if alive and self._fd is not None and self._loop is not None and self._resume is None:
            self._loop.add_reader(self._fd, self._readable)

    def _tick(self) -> None:
        self._resume = None
        got = self._read()
        if got is None:
            return
        if got and self.flow is not None and self.flow.full():
            self._pause()
            return
        self._empty_ticks = 0 if got else self._empty_ticks + 1
        if got < FLOOD_BYTES and self._empty_ticks < IDLE_TICKS:
            self._schedule_tick(slow=got < SLOW_BYTES)
        elif self._fd is not None and self._loop is not None:
            # Quiet for a while, or so busy that the kernel's 4 KiB tty buffer
            # could fill between ticks: wait on the descriptor again.
            self._empty_ticks = 0
            self._loop.add_reader(self._fd, self._readable)

    def _schedule_tick(self, *, slow: bool) -> None:
        assert self._loop is not None
        tick = self.read_interval_s * (SLOW_TICKS if slow else 1)
        # Aligned to a clock every port shares: busy ports are read in the same wake-up.
        when = (math.floor(self._loop.time() / tick) + 1) * tick
        self._resume = self._loop.call_at(when, self._tick)

    def _read(self) -> int | None:
        """Read what is there: how many bytes (0: none yet), or None if the port is gone."""
        if self._fd is None:
            return None
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError as exc:
            # EIO: the pty's other side closed or the USB device went away.
            self._set_lost(f"read failed: {errno.errorcode.get(exc.errno or 0, exc)}")
            return None
        rx_time_ns = time.time_ns()
        if not data:
            self._set_lost("end of file (peer closed)")
            return None
        assert self._on_chunk is not None
        try:
            self._on_chunk(data, rx_time_ns)
        except Exception:
            # A bug downstream must not stop this port being read (its bytes are
            # in the raw recording); say so loudly and carry on.
            log.exception("%s: handling %d bytes failed", self.url, len(data))
        return len(data)

    def read_pending(self) -> None:
        """Read what the kernel still holds (at a stop: a graceful stop loses nothing)."""
        for _ in range(64):  # bounded: a sender that never pauses cannot hold the stop
            if not self._read():
                return

    def _read_thread(self) -> None:
        ser = self._serial
        ser.timeout = 0.2
        loop = self._loop
        assert loop is not None
        while not self._stop_thread.is_set():
            try:
                # What pyserial's own ReaderThread does: block for one byte (or the
                # timeout), then take whatever else its receive queue holds.
                data = ser.read(ser.in_waiting or 1)
                if data:
                    loop.call_soon_threadsafe(self._deliver, data, time.time_ns())
            except (serial.SerialException, OSError) as exc:
                if not self._stop_thread.is_set():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self._set_lost, f"read failed: {exc}")
                return
            except RuntimeError:  # the loop closed under a reader that outlived the stop
                return

    def _deliver(self, data: bytes, rx_time_ns: int) -> None:
        if self._on_chunk is not None and not self._stopped:
            self._on_chunk(data, rx_time_ns)

    def _set_lost(self, why: str) -> None:
        self._detach()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(why)

    def write(self, data: bytes) -> None:
        """Send ``data`` only if the driver declared exactly these bytes, without ever
        waiting: a port with a descriptor takes the few bytes of a request into its
        kernel buffer at once or is lost (a device that takes nothing); one without
        (rfc2217://, whose socket write can block) sends from a thread of its own."""
        if data not in self.allowed_writes:
            raise WriteRefused(f"refused to send {data!r} to {self.url}: not a declared request")
        if self._serial is None or self._stopped:
            raise PortError(f"{self.url} is not open")
        if self._sender is not None:
            self._sender.submit(self._send_from_thread, data)
            self.bytes_written += len(data)
            return
        try:
            sent = self._serial.write(data) if self._fd is None else os.write(self._fd, data)
        except (serial.SerialException, OSError) as exc:
            self._lost_writing(str(exc))
        if sent != len(data):
            self._lost_writing(f"the port took {sent} of {len(data)} bytes")
        self.bytes_written += len(data)

    def _lost_writing(self, why: str) -> NoReturn:
        # The port is going (a network serial server dropped us, a USB adapter went):
        # the same loss a failed read is, whichever of the two notices first.
        self._set_lost(f"write failed: {why}")
        raise PortError(f"cannot write to {self.url}: {why}")

    def _send_from_thread(self, data: bytes) -> None:
        ser, loop = self._serial, self._loop
        if ser is None or loop is None:
            return
        try:
            ser.write(data)
        except (serial.SerialException, OSError) as exc:
            with contextlib.suppress(RuntimeError):  # the loop closed: the stop is done
                loop.call_soon_threadsafe(self._set_lost, f"write failed: {exc}")

    def _detach(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._fd is not None and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._fd)
        self._stop_thread.set()

    def close(self) -> None:
        """Stop reading and close the port; safe to call twice."""
        self.stop_reading()
        self.release()

    def stop_reading(self) -> None:
        """The loop's half of ``close``: nothing is read or written from now on."""
        self._detach()
        self._fd = None
        self._stopped = True
        if self._sender is not None:
            self._sender.shutdown(wait=False, cancel_futures=True)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result("closed")

    def release(self) -> None:
        """The half of ``close`` that may block (pyserial's close: an rfc2217:// port
        joins its thread and sleeps): callable from any thread, after ``stop_reading``."""
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(Exception):
                ser.close()


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


def _configure_tty(fd: int) -> None:
    """Clear HUPCL, and make an empty non-blocking read say EAGAIN rather than EOF.

    HUPCL would drop DTR when the port closes, resetting some devices. pyserial
    leaves VMIN=0 for a zero timeout, and then a read with nothing waiting returns
    0 bytes, which is indistinguishable from a hang-up; VMIN=1 makes "nothing yet"
    EAGAIN and keeps 0 for end of file.
    """
    try:
        attrs = termios.tcgetattr(fd)
    except termios.error:
        return  # not a terminal (a socket://): no modem lines, and 0 bytes is EOF
    attrs[2] &= ~termios.HUPCL
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
