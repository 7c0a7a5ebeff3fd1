"""The embedded object store: buckets are directories and objects are plain files.

Layout, with root = `<state-dir>/s3` (serving/archive.py resolves `s3://b/k` to
`<root>/b/k`, so this layout is a contract):

    <root>/<bucket>/<key>               the object's bytes, exactly
    <root>-meta/<bucket>/<key>          its sidecar: ETag, Content-Type, x-amz-meta-*, size...
    <root>-meta/.buckets/<bucket>.json  creation time and region of the bucket
    <root>-meta/.folders/<bucket>.json  the bucket's folder markers (keys ending in "/")
    <root>-uploads/<upload-id>/         multipart parts in progress (multipart.py)
    <root>-tmp/                         files being written; renamed into place when complete

The sidecar tree mirrors the object tree one-to-one, so it cannot collide with a key, and
`.buckets`/`.folders` cannot be bucket names (those start with a letter or digit). A sidecar
records the size and mtime of the file it describes; when they disagree (a crash between the
two renames, or a file copied in by hand) the sidecar is ignored and the facts are derived from
the file (ETag = MD5 of its bytes), so the object file is always the truth.

Because keys are paths, a key cannot be both an object and a "directory" of others: with `a`
stored, `a/b` is refused (and the reverse) with 409 XTideserveKeyConflict. S3 allows both.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import shutil
import stat as stat_module
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tideserve.clock import Clock, WallClock
from tideserve.errors import AlreadyExistsError, ConflictError, NotFoundError
from tideserve.objectstore import files
from tideserve.objectstore.keys import (
    check_bucket_name,
    check_key,
    is_folder_marker,
    is_valid_bucket_name,
)
from tideserve.objectstore.keys import parse_uri as parse_uri
from tideserve.settings import DEFAULT_REGION

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


@dataclass(frozen=True)
class ObjectAttributes:
    """What a writer says about an object besides its bytes."""

    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-* without prefix
    headers: Mapping[str, str] = field(default_factory=dict)  # Content-Encoding, Cache-Control..
    checksums: Mapping[str, str] = field(default_factory=dict)  # "CRC32" -> base64 value
    parts: int | None = None  # part count for a multipart object


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int  # bytes
    etag: str  # unquoted: hex MD5, or "<hex>-<part count>" for a multipart object
    last_modified: float  # epoch seconds
    attributes: ObjectAttributes


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: float  # epoch seconds
    region: str


class ObjectStore:
    def __init__(self, root: Path, clock: Clock | None = None) -> None:
        self.root = Path(root)
        self.meta_root = self.root.with_name(self.root.name + "-meta")
        self.uploads_root = self.root.with_name(self.root.name + "-uploads")
        self.tmp_root = self.root.with_name(self.root.name + "-tmp")
        self.clock: Clock = clock or WallClock()
        self._folders_lock = threading.Lock()

    # -- buckets --------------------------------------------------------------------------------

    def create_bucket(
        self, name: str, region: str = DEFAULT_REGION, *, exist_ok: bool = False
    ) -> BucketInfo:
        check_bucket_name(name)
        path = self.root / name
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            if exist_ok:
                return self.head_bucket(name)
            raise AlreadyExistsError(
                f"Your previous request to create the named bucket succeeded and you already "
                f"own it: {name}.",
                code="BucketAlreadyOwnedByYou",
            ) from None
        info = BucketInfo(name, self.clock.now(), region)
        files.write_json(self._bucket_record(name), asdict(info), self.tmp_root)
        return info

    def head_bucket(self, name: str) -> BucketInfo:
        path = self._bucket_dir(name)
        record = files.read_json(self._bucket_record(name)) or {}
        created = record.get("created", path.stat().st_mtime)
        return BucketInfo(name, float(created), str(record.get("region", DEFAULT_REGION)))

    def list_buckets(self) -> list[BucketInfo]:
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.is_symlink())
        return [self.head_bucket(n) for n in names if _valid_bucket(n)]

    def delete_bucket(self, name: str) -> None:
        path = self._bucket_dir(name)
        if self._folders(name) or _any_file(path):
            raise ConflictError(
                f"The bucket you tried to delete is not empty: {name}.", code="BucketNotEmpty"
            )
        shutil.rmtree(path)
        shutil.rmtree(self.meta_root / name, ignore_errors=True)
        self._bucket_record(name).unlink(missing_ok=True)
        self._folders_file(name).unlink(missing_ok=True)

    # -- writing --------------------------------------------------------------------------------

    def new_temp(self) -> files.TempFile:
        return files.TempFile(self.tmp_root)

    def check_writable(self, bucket: str, key: str) -> None:
        """Fail before a body is read if `key` can never be stored in `bucket`."""
        check_key(key)
        bucket_dir = self._bucket_dir(bucket)
        target = bucket_dir / key
        for parent in reversed(target.parents):
            if bucket_dir in parent.parents and parent.exists() and not parent.is_dir():
                raise _conflict(key, f"{parent.relative_to(bucket_dir)!s} is an object")
        if not is_folder_marker(key) and target.is_dir():
            raise _conflict(key, f"objects exist under '{key}/'")

    def commit(
        self, bucket: str, key: str, temp: files.TempFile, etag: str, attrs: ObjectAttributes
    ) -> ObjectInfo:
        """Publish a finished temp file as the object; the caller has verified its bytes."""
        self.check_writable(bucket, key)
        if is_folder_marker(key):
            temp.discard()
            return self._put_folder(bucket, key, attrs)
        target = self.root / bucket / key
        try:
            files.publish(temp.path, target)
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            temp.discard()
            raise _conflict(key, "a concurrent write made it a prefix of other keys") from exc
        stat = target.stat()
        info = ObjectInfo(bucket, key, stat.st_size, etag, self.clock.now(), attrs)
        self._write_sidecar(info, stat.st_mtime_ns)
        return info

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        self.check_writable(bucket, key)
        temp = self.new_temp()
        try:
            temp.write(data)
            temp.finish()
        except BaseException:
            temp.discard()
            raise
        attrs = ObjectAttributes(content_type=content_type)
        return self.commit(bucket, key, temp, hashlib.md5(data).hexdigest(), attrs)

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        self.check_writable(bucket, key)
        temp = self.new_temp()
        try:
            with open(path, "rb") as source:
                digest = hashlib.file_digest(source, "md5")
                source.seek(0)
                files.copy_into(source, temp)
            temp.finish()
        except BaseException:
            temp.discard()
            raise
        attrs = ObjectAttributes(content_type=content_type)
        return self.commit(bucket, key, temp, digest.hexdigest(), attrs)

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; deleting one that does not exist succeeds, as in S3."""
        check_key(key)
        bucket_dir = self._bucket_dir(bucket)
        if is_folder_marker(key):
            self._delete_folder(bucket, key)
            return
        try:
            (bucket_dir / key).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        (self.meta_root / bucket / key).unlink(missing_ok=True)
        keep = {bucket_dir / k.rstrip("/") for k in self._folders(bucket)}
        files.prune_empty_dirs((bucket_dir / key).parent, bucket_dir, keep)
        files.prune_empty_dirs((self.meta_root / bucket / key).parent, self.meta_root / bucket)

    # -- reading --------------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectInfo:
        check_key(key)
        self._bucket_dir(bucket)
        if is_folder_marker(key):
            record = self._folders(bucket).get(key)
            if record is None:
                raise _no_such_key(key)
            return _info_from_record(bucket, key, record)
        path = self.root / bucket / key
        try:
            stat = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            raise _no_such_key(key) from None
        if not _is_regular(stat.st_mode):
            raise _no_such_key(key)
        record = files.read_json(self.meta_root / bucket / key)
        if (
            record
            and record.get("size") == stat.st_size
            and record.get("mtime_ns") == (stat.st_mtime_ns)
        ):
            return _info_from_record(bucket, key, record)
        return self._derive_info(bucket, key, path, stat)

    def open(self, bucket: str, key: str) -> BinaryIO:
        info = self.head(bucket, key)
        if is_folder_marker(info.key):
            return io.BytesIO(b"")
        fd = os.open(self.root / bucket / key, os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as f:
            return f.read()

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.head(bucket, key)
        except NotFoundError:
            return False
        return True

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under `prefix`, in S3's order (UTF-8 bytes)."""
        bucket_dir = self._bucket_dir(bucket)
        start = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        keys = [k for k in _walk_keys(bucket_dir, start, prefix) if k.startswith(prefix)]
        keys.extend(k for k in self._folders(bucket) if k.startswith(prefix))
        return sorted(keys, key=lambda k: k.encode("utf-8", "surrogatepass"))

    # -- internals ------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        path = self.root / bucket
        if not _valid_bucket(bucket) or not path.is_dir():
            raise NotFoundError(
                f"The specified bucket does not exist: {bucket}.", code="NoSuchBucket"
            )
        return path

    def _bucket_record(self, bucket: str) -> Path:
        return self.meta_root / ".buckets" / f"{bucket}.json"

    def _folders_file(self, bucket: str) -> Path:
        return self.meta_root / ".folders" / f"{bucket}.json"

    def _folders(self, bucket: str) -> dict[str, dict[str, Any]]:
        return files.read_json(self._folders_file(bucket)) or {}

    def _put_folder(self, bucket: str, key: str, attrs: ObjectAttributes) -> ObjectInfo:
        info = ObjectInfo(bucket, key, 0, EMPTY_MD5, self.clock.now(), attrs)
        (self.root / bucket / key).mkdir(parents=True, exist_ok=True)
        with self._folders_lock:
            folders = self._folders(bucket)
            folders[key] = _record(info, 0)
            files.write_json(self._folders_file(bucket), folders, self.tmp_root)
        return info

    def _delete_folder(self, bucket: str, key: str) -> None:
        with self._folders_lock:
            folders = self._folders(bucket)
            if folders.pop(key, None) is None:
                return
            files.write_json(self._folders_file(bucket), folders, self.tmp_root)
        bucket_dir = self.root / bucket
        keep = {bucket_dir / k.rstrip("/") for k in folders}
        files.prune_empty_dirs(bucket_dir / key.rstrip("/"), bucket_dir, keep)

    def _write_sidecar(self, info: ObjectInfo, mtime_ns: int) -> None:
        path = self.meta_root / info.bucket / info.key
        if path.is_dir():  # left by keys that were deleted while their parent survived
            shutil.rmtree(path, ignore_errors=True)
        files.write_json(path, _record(info, mtime_ns), self.tmp_root)

    def _derive_info(self, bucket: str, key: str, path: Path, stat: os.stat_result) -> ObjectInfo:
        with open(path, "rb") as f:
            etag = hashlib.file_digest(f, "md5").hexdigest()
        guessed = mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE
        attrs = ObjectAttributes(content_type=guessed)
        info = ObjectInfo(bucket, key, stat.st_size, etag, stat.st_mtime, attrs)
        try:
            self._write_sidecar(info, stat.st_mtime_ns)
        except OSError:
            pass  # read-only state dir: derive again next time
        return info


def _record(info: ObjectInfo, mtime_ns: int) -> dict[str, object]:
    attrs = info.attributes
    return {
        "size": info.size,
        "mtime_ns": mtime_ns,
        "etag": info.etag,
        "last_modified": info.last_modified,
        "content_type": attrs.content_type,
        "metadata": dict(attrs.metadata),
        "headers": dict(attrs.headers),
        "checksums": dict(attrs.checksums),
        "parts": attrs.parts,
    }


def _info_from_record(bucket: str, key: str, record: Mapping[str, Any]) -> ObjectInfo:
    attrs = ObjectAttributes(
        content_type=str(record.get("content_type") or DEFAULT_CONTENT_TYPE),
        metadata=dict(record.get("metadata") or {}),
        headers=dict(record.get("headers") or {}),
        checksums=dict(record.get("checksums") or {}),
        parts=record.get("parts"),
    )
    size, modified = int(record.get("size", 0)), float(record.get("last_modified", 0.0))
    return ObjectInfo(bucket, key, size, str(record["etag"]), modified, attrs)


def _walk_keys(bucket_dir: Path, start: str, prefix: str) -> list[str]:
    """Regular files under `bucket_dir/start` whose keys could match `prefix`; symbolic links
    are not objects (they could point anywhere)."""
    out: list[str] = []
    stack = [start]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(bucket_dir / rel if rel else bucket_dir))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                    stack.append(key)
            elif entry.is_file(follow_symlinks=False):
                out.append(key)
    return out


def _any_file(path: Path) -> bool:
    for _dirpath, _dirnames, filenames in os.walk(path):
        if filenames:
            return True
    return False


def _is_regular(mode: int) -> bool:
    return stat_module.S_ISREG(mode)


def _valid_bucket(name: str) -> bool:
    return is_valid_bucket_name(name)


def _no_such_key(key: str) -> NotFoundError:
    return NotFoundError(f"The specified key does not exist: {key}.", code="NoSuchKey")


def _conflict(key: str, why: str) -> ConflictError:
    return ConflictError(
        f"Object key {key!r} cannot be stored: {why}. tideserve keeps objects as files, so a "
        "key cannot also be a prefix ('directory') of other keys.",
        code="XTideserveKeyConflict",
    )
