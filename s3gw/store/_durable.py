"""Making files and directory entries durable (shared by chunk files and packs)."""

from __future__ import annotations

import errno
import os

__all__ = ["fdatasync_path", "fsync_dir"]


def fdatasync_path(path: str) -> None:
    """``fdatasync`` a file by name (any descriptor of a file syncs the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:  # pragma: no cover - platform without directory fds
        if exc.errno in (errno.EISDIR, errno.EACCES):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
