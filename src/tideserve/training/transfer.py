"""A training job's traffic with the object store: channels in, checkpoints both ways,
artifacts out. The same calls reach the embedded store (<state-dir>/s3, what the server's S3
API serves) or an external one (`--object-store`, through fsspec).

Checkpoints follow the guide (spec §4.8): at (re)start everything under CheckpointConfig.S3Uri
is copied into LocalPath before the script starts; while it runs, files written there are
uploaded uncompressed as they change and a file deleted locally is deleted in S3; a last pass
runs when the script exits.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from tideserve.errors import NotFoundError, ValidationError
from tideserve.objectstore.keys import parse_uri
from tideserve.objectstore.remote import FsspecObjects
from tideserve.objectstore.store import ObjectStore


class JobObjects(Protocol):
    def keys(self, uri: str) -> list[str]:
        """Every object whose s3:// URI starts with `uri`, sorted."""
        ...

    def download(self, uri: str, dest: Path) -> None: ...

    def upload(self, path: Path, uri: str) -> None: ...

    def delete(self, uri: str) -> None: ...


class EmbeddedObjects:
    def __init__(self, root: Path) -> None:
        self.store = ObjectStore(root)

    def keys(self, uri: str) -> list[str]:
        bucket, prefix = parse_uri(uri)
        try:
            keys = self.store.list_keys(bucket, prefix)
        except NotFoundError:
            return []
        return [f"s3://{bucket}/{k}" for k in keys if not k.endswith("/")]

    def download(self, uri: str, dest: Path) -> None:
        bucket, key = parse_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.store.open(bucket, key) as source, open(dest, "wb") as out:
            shutil.copyfileobj(source, out, 8 * 2**20)

    def upload(self, path: Path, uri: str) -> None:
        bucket, key = parse_uri(uri)
        self.store.create_bucket(bucket, exist_ok=True)
        self.store.put_file(bucket, key, path)

    def delete(self, uri: str) -> None:
        bucket, key = parse_uri(uri)
        try:
            self.store.delete(bucket, key)
        except NotFoundError:
            pass


class ExternalObjects:
    def __init__(self, objects: FsspecObjects) -> None:
        self.objects = objects

    def keys(self, uri: str) -> list[str]:
        return [found for found, _ in self.objects.list_prefix(uri)]

    def download(self, uri: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.objects.open(uri) as source, open(dest, "wb") as out:
            shutil.copyfileobj(source, out, 8 * 2**20)

    def upload(self, path: Path, uri: str) -> None:
        with open(path, "rb") as source, self.objects.writer(uri) as out:
            shutil.copyfileobj(source, out, 8 * 2**20)

    def delete(self, uri: str) -> None:
        self.objects.remove(uri)


def relative(uri: str, prefix: str) -> str:
    """Where an object under `prefix` lands in its channel: its key after the prefix, or
    after the prefix's last '/' when the prefix ends inside a name (prefix `data/tr`, key
    `data/train/a.csv` -> `train/a.csv`; UNCONFIRMED), or its base name when the prefix
    names the object itself."""
    key, base = parse_uri(uri)[1], parse_uri(prefix)[1]
    if key == base:
        return posixpath.basename(key)
    if not base or base.endswith("/") or key[len(base)] == "/":
        return key[len(base):].lstrip("/")
    return key[len(base.rsplit("/", 1)[0]) + 1:] if "/" in base else key


def download_channel(objects: JobObjects, uri: str, data_type: str, dest: Path,
                     role: str) -> int:
    """Copy a channel's objects into `dest`; how many. No object -> ValidationError in the
    words AWS uses for a missing prefix."""
    dest.mkdir(parents=True, exist_ok=True)
    pairs = list(_manifest(objects, uri, dest) if data_type == "ManifestFile"
                 else ((u, relative(u, uri)) for u in objects.keys(uri)))
    if not pairs:
        bucket = parse_uri(uri)[0]
        raise ValidationError(
            f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. '
            "Please ensure that the bucket exists in the selected region, that objects exist "
            f'under that S3 prefix, and that the role "{role}" has "s3:ListBucket" '
            f'permissions on bucket "{bucket}".')
    for source, rel in pairs:
        target = (dest / rel).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise ValidationError(f"ClientError: {source} would be written outside its channel.")
        objects.download(source, target)
    return len(pairs)


def _manifest(objects: JobObjects, uri: str, dest: Path) -> Iterator[tuple[str, str]]:
    """A ManifestFile: [{"prefix": "s3://b/p/"}, "rel/a.csv", ...]."""
    staged = dest.parent / f".{dest.name}.manifest"
    objects.download(uri, staged)
    try:
        entries = json.loads(staged.read_text())
        prefix = entries[0]["prefix"]
        rels = [str(e) for e in entries[1:]]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValidationError(f"ClientError: manifest {uri} is not valid: {exc}") from None
    finally:
        staged.unlink(missing_ok=True)
    for rel in rels:
        yield prefix.rstrip("/") + "/" + rel.lstrip("/"), rel.lstrip("/")


class CheckpointSync:
    """Mirror `local` to the `s3_uri` prefix: restore() once, sync() as often as wanted."""

    def __init__(self, objects: JobObjects, local: Path, s3_uri: str) -> None:
        self.objects = objects
        self.local = local
        self.s3_uri = s3_uri.rstrip("/")
        self._seen: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns)

    def restore(self) -> int:
        self.local.mkdir(parents=True, exist_ok=True)
        count = 0
        for uri in self.objects.keys(self.s3_uri + "/"):
            rel = uri[len(self.s3_uri) + 1:]
            target = self.local / rel
            self.objects.download(uri, target)
            stat = target.stat()
            self._seen[rel] = (stat.st_size, stat.st_mtime_ns)
            count += 1
        return count

    def sync(self) -> int:
        """Upload what changed since the last pass, delete what went; how many changes."""
        current: dict[str, tuple[int, int]] = {}
        changes = 0
        for path in sorted(self.local.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(self.local).as_posix()
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # removed while we walked
            current[rel] = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(rel) != current[rel]:
                try:
                    self.objects.upload(path, f"{self.s3_uri}/{rel}")
                except FileNotFoundError:
                    current.pop(rel)
                    continue
                changes += 1
        for rel in set(self._seen) - set(current):
            self.objects.delete(f"{self.s3_uri}/{rel}")
            changes += 1
        self._seen = current
        return changes
