"""The object store as a transform job sees it: list a prefix, read an object, publish a
finished output atomically. Two implementations, one setting apart (DESIGN.md principle 5):

    EmbeddedObjects  <state-dir>/s3 (objectstore.store.ObjectStore): an output is written in
                     the store's temp area (<state-dir>/s3-tmp, same filesystem) and renamed
                     into place, with its sidecar (ETag), so S3 GetObject serves it at once
    ExternalObjects  --object-store (objectstore.remote.FsspecObjects): staged locally, then
                     uploaded in one atomic put (or temp key + rename on filesystems)

Staged outputs are ordinary files, so a server that stopped between "the output is complete"
and "it is published" publishes the same file when it resumes (runner.py).
"""

from __future__ import annotations

import contextlib
import posixpath
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from tideserve.asyncinf.objects import parse_s3_uri
from tideserve.errors import NotFoundError
from tideserve.objectstore import files
from tideserve.objectstore.remote import FsspecObjects
from tideserve.objectstore.store import ObjectAttributes, ObjectStore


class JobObjects(Protocol):
    def list(self, uri: str) -> list[tuple[str, int]]:
        """(s3:// URI, size in bytes) of every object whose key starts with `uri`'s key, in
        S3's key order; [] when the bucket or the prefix holds none."""
        ...

    def size(self, uri: str) -> int | None: ...

    def open(self, uri: str) -> BinaryIO: ...

    def new_output(self) -> files.TempFile:
        """A temp file to assemble an output in."""
        ...

    def publish(self, staged: files.TempFile, uri: str, etag: str, content_type: str) -> None:
        ...

    def republish(self, staged: Path, uri: str) -> None:
        """Publish a staged file left by a server that stopped before publishing it."""
        ...


class EmbeddedObjects:
    def __init__(self, root: Path) -> None:
        self.store = ObjectStore(root)

    def list(self, uri: str) -> list[tuple[str, int]]:
        bucket, prefix = parse_s3_uri(uri, allow_empty_key=True)
        try:
            keys = self.store.list_keys(bucket, prefix)
        except NotFoundError:
            return []
        out = []
        for key in keys:
            if key.endswith("/"):
                continue  # a folder marker is no input
            size = self.size(f"s3://{bucket}/{key}")
            if size is not None:
                out.append((f"s3://{bucket}/{key}", size))
        return out

    def size(self, uri: str) -> int | None:
        bucket, key = parse_s3_uri(uri)
        path = self.store.root / bucket / key
        return path.stat().st_size if path.is_file() else None

    def open(self, uri: str) -> BinaryIO:
        bucket, key = parse_s3_uri(uri)
        return self.store.open(bucket, key)

    def new_output(self) -> files.TempFile:
        return self.store.new_temp()

    def publish(self, staged: files.TempFile, uri: str, etag: str, content_type: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.store.create_bucket(bucket, exist_ok=True)
        self.store.commit(bucket, key, staged, etag, ObjectAttributes(content_type=content_type))

    def republish(self, staged: Path, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        # No sidecar: the store derives the ETag from the bytes (objectstore/store.py).
        files.publish(staged, self.store.root / bucket / key)


class ExternalObjects:
    def __init__(self, remote: FsspecObjects, staging: Path) -> None:
        self.remote = remote
        self.staging = staging

    def list(self, uri: str) -> list[tuple[str, int]]:
        parse_s3_uri(uri, allow_empty_key=True)  # the job's own URI rules
        return self.remote.list_prefix(uri)

    def size(self, uri: str) -> int | None:
        return self.remote.size(uri) if self.remote.exists(uri) else None

    def open(self, uri: str) -> BinaryIO:
        return self.remote.open(uri)

    def new_output(self) -> files.TempFile:
        return files.TempFile(self.staging)

    def publish(self, staged: files.TempFile, uri: str, etag: str, content_type: str) -> None:
        self.republish(staged.path, uri)

    def republish(self, staged: Path, uri: str) -> None:
        with open(staged, "rb") as source, self.remote.writer(uri) as out:
            shutil.copyfileobj(source, out, 8 << 20)
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def output_uri(output_path: str, input_prefix_uri: str, input_uri: str) -> str:
    """`<S3OutputPath>/<input key relative to the input prefix's folder>.out` (spec §3.5):
    input prefix s3://b/in/ and object s3://b/in/sub/a.csv -> <out>/sub/a.csv.out. A prefix
    that ends inside a name (s3://b/in/part-) keeps the folder as the base."""
    _, prefix = parse_s3_uri(input_prefix_uri, allow_empty_key=True)
    _, key = parse_s3_uri(input_uri)
    folder = prefix if prefix.endswith("/") or not prefix else posixpath.dirname(prefix) + "/"
    if folder == "/":
        folder = ""
    relative = key[len(folder):] if key.startswith(folder) else posixpath.basename(key)
    return output_path.rstrip("/") + "/" + relative + ".out"
