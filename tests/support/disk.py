"""A small file system that fills for real: the kernel's own ENOSPC, not a stand-in."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (needs root, as CI and this machine have)."""
    path.mkdir(parents=True)
    # Small pages whatever the machine's default for shared memory: with huge pages a
    # 2 MiB file system would be one page, full or empty.
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size},huge=never", "tmpfs", str(path)]
    if subprocess.run(mount, check=False, capture_output=True).returncode != 0:
        mount[4] = f"size={size}"  # a kernel without shmem huge pages knows no huge=
        subprocess.run(mount, check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system is full."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return ballast
    finally:
        os.close(fd)
