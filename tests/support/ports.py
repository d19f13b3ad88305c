"""Loopback ports for the servers a test starts, which no other process can take first.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` is free only until the
socket closes: another pytest worker asking the same way, or any outgoing connection
on the machine (they draw from the same ephemeral range), can take it before the
server binds it. So the tests take their ports from below the ephemeral range, where
the kernel hands out nothing by itself, in a block of their own per xdist worker, one
after another: no two workers share a port, and a port a test stopped using is not
handed out again until its worker has gone round its whole block.
"""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

BLOCK = 500
"""Ports per worker: more than a worker's tests use in one cycle through the block."""
FIRST = 20000


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_index() -> int:
    """``gw3`` -> 3; 0 without xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(name[2:]) if name[2:].isdigit() else 0


def _block() -> range:
    start = FIRST + _worker_index() * BLOCK
    if start + BLOCK > _ephemeral_low():
        raise RuntimeError(
            f"too many pytest workers for the ports below {_ephemeral_low()} "
            f"({BLOCK} each from {FIRST})"
        )
    return range(start, start + BLOCK)


_ports = itertools.cycle(_block())


def free_port() -> int:
    """The next port of this worker's block that nothing listens on now."""
    for _ in range(BLOCK):
        port = next(_ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # a server of this worker's that is still up, or a stranger
            return port
    raise RuntimeError("no free port left in this worker's block")
