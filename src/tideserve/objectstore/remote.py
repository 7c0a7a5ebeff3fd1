"""An external object store for `s3://` locations, chosen by configuration
(`tideserve up --object-store URL`): a real S3 (`s3://`, through s3fs), an S3-compatible store
such as MinIO or Ceph (`s3://` plus an endpoint_url in the storage options), a shared
filesystem (`file:///mnt/shared/s3`) or `memory://` in tests.

`s3://<bucket>/<key>` maps onto `<prefix>/<bucket>/<key>`, the embedded store's layout, so the
prefix `s3://` is real S3 itself and `file:///mnt/shared/s3` can be an embedded store's root
that other machines mount. Bucket names and keys are checked with the embedded store's rules
(no `.`/`..` segments), so no location escapes the prefix.

Writes never show a partial object. The bytes are staged in a local temporary file first (an
async output arrives in pieces, and a failure half-way must leave nothing behind); on a clean
end they are uploaded in one call. On stores where a PUT is atomic per object (S3 and the
other object stores in `_ATOMIC_PUT`: an object appears whole when its PutObject or
CompleteMultipartUpload succeeds, never in part) the upload goes straight to the key; anywhere
else (filesystems, memory) it goes to a temporary sibling key that is then renamed over the
target, which is atomic on a POSIX filesystem.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any, BinaryIO, cast

from tideserve.errors import ValidationError
from tideserve.objectstore.keys import check_bucket_name, check_key, parse_uri

OPTIONS_ENV = "TIDESERVE_OBJECT_STORE_OPTIONS"
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az", "adl", "oss"})


def options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The fsspec storage options in $TIDESERVE_OBJECT_STORE_OPTIONS (a JSON object, e.g.
    `{"endpoint_url": "http://minio:9000", "key": "...", "secret": "..."}` for s3fs)."""
    text = environ.get(OPTIONS_ENV, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{OPTIONS_ENV} is not valid JSON: {exc}.") from None
    if not isinstance(options, dict):
        raise ValidationError(f"{OPTIONS_ENV} must be a JSON object of fsspec storage options.")
    return options


def store_url(prefix: str, uri: str) -> str:
    """`store_url("file:///mnt/s3", "s3://b/k")` -> "file:///mnt/s3/b/k"; the prefix `s3://`
    maps every location onto itself."""
    bucket, key = parse_uri(uri)
    check_bucket_name(bucket)
    check_key(key)
    base = prefix if prefix.endswith("://") else prefix.rstrip("/") + "/"
    return f"{base}{bucket}/{key}"


class FsspecObjects:
    """The `Objects` interface (tideserve.asyncinf.objects) over any fsspec filesystem."""

    def __init__(self, prefix: str, options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        self.prefix = prefix
        self.options = dict(options or {})
        try:
            self.fs, self._root = fsspec.core.url_to_fs(prefix, **self.options)
        except ImportError as exc:  # e.g. s3:// without s3fs
            raise ValidationError(f"Object store {prefix!r} needs a package: {exc}.") from None
        except ValueError as exc:  # an unknown protocol
            raise ValidationError(f"Object store {prefix!r} is not usable: {exc}.") from None
        protocols = self.fs.protocol
        names = {protocols} if isinstance(protocols, str) else set(protocols)
        self.atomic_put = bool(names & _ATOMIC_PUT)

    def url(self, uri: str) -> str:
        """The fsspec URL of an `s3://` location (what a ModelDataUrl is fetched from)."""
        return store_url(self.prefix, uri)

    def path(self, uri: str) -> str:
        """The location's path on `self.fs`."""
        bucket, key = parse_uri(uri)
        check_bucket_name(bucket)
        check_key(key)
        return posixpath.join(self._root, bucket, key) if self._root else f"{bucket}/{key}"

    def exists(self, uri: str) -> bool:
        return bool(self.fs.isfile(self.path(uri)))

    def size(self, uri: str) -> int:
        return int(self.fs.size(self.path(uri)))

    def open(self, uri: str) -> BinaryIO:
        return cast(BinaryIO, self.fs.open(self.path(uri), "rb"))

    def list_prefix(self, uri: str) -> list[tuple[str, int]]:
        """(s3:// URI, size) of every object whose key starts with `uri`'s key, in S3's key
        order (UTF-8 bytes); [] when there is none. Folder markers are no objects."""
        bucket, prefix = parse_uri(uri)
        raw = self.path(f"s3://{bucket}/x")[:-1]  # "<root>/<bucket>/"
        base = raw.lstrip("/")  # fsspec may answer paths with or without the leading "/"
        folder = raw + (prefix.rsplit("/", 1)[0] if "/" in prefix else "")
        try:
            found = self.fs.find(folder.rstrip("/"), detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            path = path.lstrip("/")
            if not path.startswith(base):
                continue
            key = path[len(base):]
            if key.startswith(prefix) and info.get("type") == "file" and not key.endswith("/"):
                out.append((f"s3://{bucket}/{key}", int(info.get("size") or 0)))
        return sorted(out, key=lambda item: item[0].encode("utf-8", "surrogatepass"))

    def put_bytes(self, uri: str, data: bytes) -> None:
        with self.writer(uri) as out:
            out.write(data)

    @contextlib.contextmanager
    def writer(self, uri: str) -> Iterator[BinaryIO]:
        """Write an object in pieces; it appears, whole, only if the block ends cleanly."""
        target = self.path(uri)
        with tempfile.NamedTemporaryFile(prefix="tideserve-object-", suffix=".part") as staged:
            yield cast(BinaryIO, staged)
            staged.flush()
            self._commit(staged, target)

    def remove(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(uri))

    def _commit(self, staged: IO[bytes], target: str) -> None:
        parent = posixpath.dirname(target)
        if parent and not self.atomic_put:  # object stores have no directories to make
            self.fs.makedirs(parent, exist_ok=True)
        if self.atomic_put:
            self.fs.put_file(staged.name, target)
            return
        temp = posixpath.join(parent, f".{posixpath.basename(target)}.{uuid.uuid4().hex}.part")
        try:
            self.fs.put_file(staged.name, temp)
            self.fs.mv(temp, target)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(temp)
            raise
