"""Filesystem primitives for the object store: files written atomically (temp file in the
same filesystem, fsync, rename, fsync of the directory), small JSON records, and pruning of
directories that deletes leave empty."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO


class TempFile:
    """A file being written in the store's temp area; `finish()` makes its bytes durable so
    that a rename publishes a complete file or nothing."""

    def __init__(self, tmp_root: Path) -> None:
        tmp_root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="obj-", dir=tmp_root)
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def append_file(self, source: Path) -> None:
        """Append a whole file; in-kernel (copy_file_range) where the platform has it."""
        with open(source, "rb") as src:
            self.file.flush()
            remaining = os.fstat(src.fileno()).st_size
            copy_range = getattr(os, "copy_file_range", None)
            while remaining > 0 and copy_range is not None:
                try:
                    copied = copy_range(src.fileno(), self.file.fileno(), remaining)
                except OSError:
                    break  # e.g. EXDEV on old kernels: fall back to reading
                if copied == 0:
                    break
                remaining -= copied
                self.size += copied
            if remaining > 0:
                src.seek(os.fstat(src.fileno()).st_size - remaining)
                self.file.seek(0, os.SEEK_END)
                copy_into(src, self)

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


def publish(temp: Path, target: Path) -> None:
    """Rename a finished temp file over `target` (creating its directories) and make the
    rename itself durable."""
    for attempt in range(3):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(temp, target)
            break
        except FileNotFoundError:
            # A concurrent delete pruned the directory we just made; make it again.
            if attempt == 2:
                raise
    fsync_dir(target.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, value: Any, tmp_root: Path) -> None:
    temp = TempFile(tmp_root)
    try:
        temp.write(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())
        temp.finish()
        publish(temp.path, path)
    except BaseException:
        temp.discard()
        raise


def read_json(path: Path) -> Any | None:
    """The record at `path`, or None when it is missing or unreadable (a sidecar is a cache
    of facts the object file can re-derive, so a damaged one is treated as absent)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def prune_empty_dirs(start: Path, stop: Path, keep: set[Path] | None = None) -> None:
    """Remove `start` and its parents while they are empty, never `stop` or above, and never
    a directory in `keep` (one that a folder marker names)."""
    current = start
    while current != stop and stop in current.parents:
        if keep and current in keep:
            return
        try:
            current.rmdir()
        except OSError:  # not empty, already gone or not a directory: stop climbing
            return
        current = current.parent


def copy_into(source: BinaryIO, temp: TempFile, chunk: int = 8 * 1024 * 1024) -> None:
    while True:
        data = source.read(chunk)
        if not data:
            return
        temp.write(data)
