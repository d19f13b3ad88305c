"""Device protocols, sans-IO (bytes in, records out), and the serial port layer.

Nothing here imports the daemon or the simulators.
"""

PVLOG_PACKAGE = True
"""The mark `pvlog` checks before it runs: this package is pvlog's, not another of its name."""
