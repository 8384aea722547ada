"""The page cache of one file: dropping it (a cold-cache measurement) and reading how
much of it is resident (`fincore`, util-linux). Standard library only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (written back first: DONTNEED leaves
    dirty pages where they are)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_bytes(path: Path) -> int:
    argv = ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return int(done.stdout.split()[0])
