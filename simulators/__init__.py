"""Simulated devices: physical models, inflation profiles, faults, pty/TCP links, control.

Built like lewis: a device model with time injected (``advance(dt)``), the protocol
encoding, and the transport, as separate pieces; plus a control channel to act on
a running device.
"""

PVLOG_PACKAGE = True
"""The mark `pvlog` checks before it runs: this package is pvlog's, not another of its name."""
