"""``pvlog replay``: the simulators' replay, reading recordings pvlog's way.

The replay itself (pacing, the pty or TCP port, answering a polled device's requests)
is the simulators' (``simulators.replay``), which must not import the daemon; this
gives it pvlog's reader, so a damaged chunk is skipped rather than ending the replay,
and refuses a damaged recording unless ``--allow-damaged``, having said what it lost.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from daemon.recordings.reader import metadata, problem, read
from daemon.tools import damage
from daemon.tools.arguments import handled_by
from simulators import replay


def io_messages(path: Path) -> Iterator[tuple[str, int, bytes]]:
    for item in read(path):
        if not isinstance(item, dict) and item[0] in ("raw", "written"):
            yield item


def accept(files: list[Path], allow: bool) -> bool:
    """Whether to play ``files``: each one a recording, and none damaged (or ``allow``)."""
    for f in files:
        why = problem(f)
        if why is not None:
            print(f"pvlog replay: {f}: {why}", file=sys.stderr)
            return False
    devices = sorted({_device(f) for f in files})
    if len(devices) > 1:  # one port is one device: two interleaved would be neither
        print(f"pvlog replay: the recordings are of {len(devices)} devices "
              f"({', '.join(devices)}): a replay serves one; give one device's files",
              file=sys.stderr)  # fmt: skip
        return False
    return not damage.say("pvlog replay", damage.scan(files), allow=allow)


def _device(path: Path) -> str:
    """The device a recording is of, from its metadata (read from the file's start)."""
    return metadata(path).get("device", "?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = replay.DESCRIPTION
    replay.add_arguments(parser)
    handled_by(parser, run)


def run(args: argparse.Namespace) -> int:
    return replay.run(args, io_messages, accept)
