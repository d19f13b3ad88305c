"""The port layer on real pseudo-terminals, opened by pyserial: quiet, read-only, event driven."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from drivers.modbus import KELLER, ModbusParser, with_crc
from drivers.port import EAGER_S, PortError, SerialPort, WriteRefused
from simulators.link import PtyLink, TcpLink

pytestmark = pytest.mark.integration

MODEM_IOCTLS = {termios.TIOCMBIS, termios.TIOCMBIC, termios.TIOCMSET}

_recording: list[int] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "fcntl.ioctl" and _recording is not None:
        _recording.append(int(args[1]))  # type: ignore[call-overload]


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only inside `ioctls()`


@contextlib.contextmanager
def ioctls() -> Iterator[list[int]]:
    """Every ioctl request this process makes inside the block (Python's audit events)."""
    global _recording  # noqa: PLW0603
    _recording = []
    try:
        yield _recording
    finally:
        _recording = None


async def started_pty(tmp: Path) -> PtyLink:
    link = PtyLink(str(tmp / "dev"))
    await link.start()
    return link


async def test_open_asserts_no_modem_line_and_sends_nothing(tmp_path: Path) -> None:
    link = await started_pty(tmp_path)
    port = SerialPort(str(tmp_path / "dev"))
    with ioctls() as seen:
        port.open()
    assert not MODEM_IOCTLS & set(seen), "opening the port touched DTR/RTS"
    chunks: list[tuple[bytes, int]] = []
    port.start(lambda data, t: chunks.append((data, t)))
    await asyncio.sleep(0.1)
    assert link.listening
    assert link.send(b"$PVS,1*00\r\n")
    await asyncio.sleep(0.1)
    port.close()
    assert b"".join(c for c, _ in chunks) == b"$PVS,1*00\r\n"
    assert all(t > 1_600_000_000 * 10**9 for _, t in chunks)  # UTC ns receive times
    await asyncio.sleep(0.1)
    assert link.rx_bytes == 0
    link.close()


async def test_the_ioctl_check_sees_plain_pyserial_assert_dtr(tmp_path: Path) -> None:
    """The check above can fail: pyserial left to itself drives DTR and RTS on open."""
    link = await started_pty(tmp_path)
    with ioctls() as seen:
        ser = serial.Serial(str(tmp_path / "dev"))
    ser.close()
    assert MODEM_IOCTLS & set(seen)
    link.close()


async def test_hupcl_is_cleared(tmp_path: Path) -> None:
    link = await started_pty(tmp_path)
    fd = os.open(tmp_path / "dev", os.O_RDWR | os.O_NOCTTY)
    attrs = termios.tcgetattr(fd)
    attrs[2] |= termios.HUPCL
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    port = SerialPort(str(tmp_path / "dev"))
    port.open()
    assert not termios.tcgetattr(fd)[2] & termios.HUPCL
    port.close()
    os.close(fd)
    link.close()


async def test_undeclared_writes_are_refused_declared_ones_sent(tmp_path: Path) -> None:
    link = await started_pty(tmp_path)
    streaming = SerialPort(str(tmp_path / "dev"))
    streaming.open()
    with pytest.raises(WriteRefused):
        streaming.write(b"$PVCMD,ZERO*00\r\n")
    with pytest.raises(WriteRefused):
        streaming.write(b"")
    streaming.close()
    polled = SerialPort(str(tmp_path / "dev"), allowed_writes=frozenset({b"\x01\x03\x00\x00"}))
    polled.open()
    polled.start(lambda d, t: None)
    await asyncio.sleep(0.1)
    polled.write(b"\x01\x03\x00\x00")
    with pytest.raises(WriteRefused):
        polled.write(b"\x01\x06\x00\x00")  # a write-register request: never
    # A Modbus gauge's port: its read request goes, a well-formed write to the same
    # register (function 6, a valid CRC) does not.
    gauge = ModbusParser(1, KELLER)
    polled.allowed_writes = gauge.allowed_writes
    polled.write(gauge.requests[0])
    with pytest.raises(WriteRefused):
        polled.write(with_crc(bytes([1, 6, 0, 2, 0, 0])))
    await asyncio.sleep(0.2)
    polled.close()
    assert link.rx_bytes == 4 + 8  # exactly the declared requests, nothing else
    link.close()


async def test_unplug_is_reported_and_replug_reopens(tmp_path: Path) -> None:
    link = await started_pty(tmp_path)
    port = SerialPort(str(tmp_path / "dev"))
    port.open()
    port.start(lambda d, t: None)
    await asyncio.sleep(0.1)
    link.unplug()
    assert port.lost is not None
    why = await asyncio.wait_for(port.lost, 2)
    assert "read failed" in why or "end of file" in why
    port.close()
    # Hold the freed pty number, locked (no unlockpt), so that no other process's pty
    # (a parallel test) is found behind the old path.
    held = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
    try:
        with pytest.raises(PortError):
            SerialPort(str(tmp_path / "dev")).open()  # the symlink points nowhere now
        await link.replug()
    finally:
        os.close(held)
    again = SerialPort(str(tmp_path / "dev"))
    again.open()
    got: list[bytes] = []
    again.start(lambda d, t: got.append(d))
    for _ in range(250):  # the link learns of its reader by polling: wait for it
        if link.listening:
            break
        await asyncio.sleep(0.02)
    assert link.send(b"back\r\n"), "the link never saw the reopened port"
    for _ in range(250):
        if b"".join(got) == b"back\r\n":
            break
        await asyncio.sleep(0.02)
    assert b"".join(got) == b"back\r\n"
    again.close()
    link.close()


async def test_a_write_to_a_dropped_connection_is_the_port_lost() -> None:
    """A network serial server that drops pvlog: the next poll's write fails, and that is
    the port lost (said once, by ``lost``), never an error of another kind."""
    link = TcpLink("127.0.0.1", 0)
    await link.start()
    port = SerialPort(link.address, allowed_writes=frozenset({b"*R\r"}))
    port.open()
    port.start(lambda d, t: None)
    for _ in range(250):
        if link.listening:
            break
        await asyncio.sleep(0.02)
    link.unplug()  # a reset, as a server that goes away sends

    async def write_until_refused() -> str:
        for _ in range(250):  # the first write after a reset may still be taken
            try:
                port.write(b"*R\r")
            except PortError as exc:
                return str(exc)
            await asyncio.sleep(0.02)
        return "every write taken"

    assert (await write_until_refused()).startswith("cannot write to socket://")
    assert port.lost is not None
    why = await asyncio.wait_for(port.lost, 5)
    assert why.startswith(("write failed", "read failed", "end of file"))
    port.close()


async def test_socket_url() -> None:
    link = TcpLink("127.0.0.1", 0)
    await link.start()
    port = SerialPort(link.address)
    port.open()
    got: list[bytes] = []
    port.start(lambda d, t: got.append(d))
    for _ in range(50):
        if link.listening:
            break
        await asyncio.sleep(0.02)
    link.send(b"$PVS\r\n")
    await asyncio.sleep(0.2)
    assert b"".join(got) == b"$PVS\r\n"
    link.unplug()
    assert port.lost is not None
    await asyncio.wait_for(port.lost, 2)
    port.close()
    assert link.rx_bytes == 0


class Gate:
    """A pipeline that is full until opened: ``full`` after each read, ``wait`` to resume."""

    def __init__(self) -> None:
        self.closed = True
        self.resumes: list[object] = []

    def full(self) -> bool:
        return self.closed

    def wait(self, resume: object) -> None:
        self.resumes.append(resume)


async def test_a_full_pipeline_pauses_reading_and_the_sender_waits(tmp_path: Path) -> None:
    """Back-pressure on a real pty: after a read finds the pipeline full, the port reads
    nothing more, the kernel's buffer fills and a non-blocking sender is refused; once the
    pipeline has room every byte arrives, in order."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    gate = Gate()
    port = SerialPort(path, flow=gate)
    port.open()
    os.close(slave)
    got = bytearray()
    port.start(lambda data, t: got.extend(data))
    os.set_blocking(master, False)
    sent = bytearray()
    pattern = bytes(range(256)) * 16
    os.write(master, pattern[:100])
    sent += pattern[:100]
    await asyncio.sleep(0.1)
    assert bytes(got) == bytes(sent) and port.paused and len(gate.resumes) == 1
    refused = False
    for _ in range(10_000):  # until the kernel holds no more
        try:
            sent += pattern[: os.write(master, pattern)]
        except BlockingIOError:
            refused = True
            break
        await asyncio.sleep(0)
    assert refused, "the sender had to wait"
    assert len(got) == 100, "nothing read while paused"
    gate.closed = False
    gate.resumes.pop()()  # type: ignore[operator]
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(got) == len(sent):
            break
    assert bytes(got) == bytes(sent), "every byte, in order, once reading resumed"
    assert not port.paused
    port.close()
    os.close(master)


async def test_a_port_reads_each_arrival_in_its_first_second_then_on_ticks(tmp_path: Path) -> None:
    """A device clock's fit starts from the first reads, so for its first second open a
    port reads bytes as they come (each write its own chunk); then on the shared ticks,
    which take several writes in one wake-up."""

    async def chunks_for_writes(master: int, got: list[bytes], writes: int) -> int:
        before, total = len(got), sum(map(len, got)) + writes * 50
        for k in range(writes):
            os.write(master, bytes([k]) * 50)
            await asyncio.sleep(0.01)
        for _ in range(1000):  # every byte read, however late a loaded machine reads it
            if sum(map(len, got)) == total:
                break
            await asyncio.sleep(0.01)
        return len(got) - before

    # Ticks of 0.5 s: after the first second, 25 writes 10 ms apart are read in a few
    # wake-ups, however the machine schedules them (a late loop only takes more at once).
    master, slave = os.openpty()
    port = SerialPort(os.ttyname(slave), read_interval_s=0.5)
    port.open()
    os.close(slave)
    got: list[bytes] = []
    port.start(lambda data, t: got.append(data))
    started = asyncio.get_running_loop().time()
    eager = await chunks_for_writes(master, got, 25)
    assert asyncio.get_running_loop().time() - started < EAGER_S, "the machine is too slow"
    await asyncio.sleep(EAGER_S)
    ticked = await chunks_for_writes(master, got, 25)
    port.close()
    os.close(master)
    assert eager >= 13, f"first second: {eager} chunks for 25 writes"
    assert ticked <= 12, f"after it: {ticked} chunks for 25 writes"
    assert b"".join(got) == (b"".join(bytes([k]) * 50 for k in range(25))) * 2


async def test_a_link_closes_only_once_a_paused_reader_has_taken_everything(tmp_path: Path) -> None:
    """The end of a replay: the reader (pvlog, paused by a flood) is behind, and closing
    the pty then would lose what the terminal still holds."""
    link = await started_pty(tmp_path)
    port = SerialPort(str(tmp_path / "dev"))
    port.open()
    for _ in range(100):
        if link.listening:
            break
        await asyncio.sleep(0.02)
    sent = bytes(range(256)) * 64  # 16 KiB: more than the terminal holds
    assert link.send(sent)
    await asyncio.sleep(0.2)
    assert link.unread() > 0, "nothing read yet: the reader is paused"
    got = bytearray()
    reader = asyncio.get_running_loop().call_later(0.5, port.start, lambda d, t: got.extend(d))
    await link.drained()
    link.close()
    reader.cancel()
    await asyncio.sleep(0.1)
    port.close()
    assert bytes(got) == sent
