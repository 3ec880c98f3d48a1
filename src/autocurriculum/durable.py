"""fsync for files and directories: what makes a rename or a write survive a power cut.

Why one place: checkpoints, operator requests, acknowledgements, the pidfile and a truncated log all
need "this is on the disk now", and an fsync that forgets the directory (or closes nothing on error)
is an easy mistake to make once per copy.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync one file or directory (a directory's fsync makes the names in it, e.g. a rename, durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below `root`, then `root` itself."""
    for path in [*root.rglob("*"), root]:
        fsync_path(path)
