"""The pvlog service: configuration, acquisition, timestamps, outbox, sinks and CLI."""
