"""The state dir and its secret-bearing files are private to the user running the server.

The state dir holds the database (every access key, sealed), `secret.key` that unseals them,
and the `credentials` file a client signs with. Files are created private (os.open with mode
0600, directories mkdir 0700), never written first and chmod-ed after, so there is no moment
when another user can open them. Files left with looser modes by an older tideserve are
tightened at start (a one-time migration; an open file descriptor another user already holds
cannot be revoked, which is why creation must be private in the first place).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("tideserve")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Everything a server process creates after this, under any directory, is owner-only: logs,
# model directories, S3 objects, SQLite's -wal and -shm.
PRIVATE_UMASK = 0o077


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) 0700; tighten it if it exists with looser bits."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR)


def create_private_file(path: Path) -> None:
    """Make sure `path` exists and is 0600, without touching its content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    os.close(fd)
    tighten(path, PRIVATE_FILE)


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path`, created 0600 (`exclusive`: fail if it already exists)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as f:
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)  # an older, looser file: tighten before writing
        f.write(data)


def tighten(path: Path, mode: int) -> None:
    """Drop permission bits beyond `mode` from an existing `path` (a no-op when already so)."""
    if not path.exists():
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        log.warning("%s was mode %o; making it %o", path, current, current & mode)
        path.chmod(current & mode)
