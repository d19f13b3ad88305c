"""The pvlog service: configuration, acquisition, timestamps, outbox, sinks and CLI."""

PVLOG_PACKAGE = True
"""The mark `pvlog` checks before it runs: this package is pvlog's, not another of its name."""
