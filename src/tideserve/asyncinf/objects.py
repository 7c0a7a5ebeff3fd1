"""s3:// locations as files: `s3://<bucket>/<key>` is `<root>/<bucket>/<key>` with root =
<state-dir>/s3, the object store's layout (tideserve.objectstore serves the same files over
the S3 API). Writes are atomic: a temp file in the same directory, fsync, rename, so a reader
or a crash sees either no object or the whole object."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from tideserve.errors import ValidationError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def parse_s3_uri(uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
    """`s3://bucket/a/b` -> ("bucket", "a/b"). Keys may not climb out of the bucket."""
    if not uri.startswith("s3://"):
        raise ValidationError(f"'{uri}' is not an s3:// URI (https:// locations are not served).")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise ValidationError(f"'{bucket}' in '{uri}' is not a valid bucket name.")
    parts = [p for p in key.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise ValidationError(f"The key of '{uri}' may not contain '.' or '..' segments.")
    if not parts and not allow_empty_key:
        raise ValidationError(f"'{uri}' names a bucket, not an object.")
    return bucket, key


def join(base: str, *parts: str) -> str:
    """`join("s3://b/out", "x", "id.out")` -> "s3://b/out/x/id.out" (no doubled slashes)."""
    text = base.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            text = f"{text}/{part}"
    return text


class Objects(Protocol):
    """Where async inference reads inputs and writes results: LocalObjects (the embedded
    store's files) or tideserve.objectstore.remote.FsspecObjects (an external store)."""

    def exists(self, uri: str) -> bool: ...

    def size(self, uri: str) -> int: ...

    def open(self, uri: str) -> BinaryIO: ...

    def put_bytes(self, uri: str, data: bytes) -> None: ...

    def writer(self, uri: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def remove(self, uri: str) -> None: ...


class LocalObjects:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # Partial writes live beside the tree, not in it (the object store's own temp area,
        # same filesystem so the rename is atomic): a crash mid-write leaves nothing in a
        # bucket that a listing would show.
        self.tmp_root = self.root.parent / "s3-tmp"

    def path(self, uri: str) -> Path:
        bucket, key = parse_s3_uri(uri)
        return self.root / bucket / key

    def exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    def size(self, uri: str) -> int:
        return self.path(uri).stat().st_size

    def open(self, uri: str) -> BinaryIO:
        return open(self.path(uri), "rb")

    def put_bytes(self, uri: str, data: bytes) -> None:
        with self.writer(uri) as out:
            out.write(data)

    @contextlib.contextmanager
    def writer(self, uri: str) -> Iterator[BinaryIO]:
        """Write an object in pieces; it appears, whole, only if the block ends cleanly."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="async-", suffix=".part", dir=self.tmp_root)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def remove(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(uri).unlink()
