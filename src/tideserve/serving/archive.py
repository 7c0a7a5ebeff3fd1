"""Fetch a model's `ModelDataUrl` into a local model directory, the way SageMaker extracts it
into /opt/ml/model before the container starts.

Accepted URLs: `s3://bucket/key` (the embedded object store: the local path
`<object_store_root>/<bucket>/<key>`; with `object_store_root=None` it goes through fsspec,
i.e. a real S3 when s3fs and credentials are configured), `file://` URLs, plain paths, and
any other fsspec URL. The object is a tar archive (`model.tar.gz`, any compression), a
directory (SageMaker's uncompressed S3Prefix data), or a single file copied in as is.

An archive is untrusted input. Before anything is written, every member is checked: no
absolute names, no `..`, no writing through a symbolic link, no symbolic or hard links that
lead outside the tree, no devices or FIFOs. Extraction then runs with tarfile's `data` filter,
which re-checks each path against the real filesystem (it catches link chains that only
escape once earlier links exist). A refusal is a ValidationError naming the member, and
nothing is ever written outside `dest`.

Everything lands in a temporary sibling of `dest` that is renamed into place when complete
(over `dest` if it exists and is empty), so a non-empty `dest` is always a finished fetch:
fetching again returns it without work (models are immutable, so a directory per model is a
cache).

Unpacking is bounded: `max_bytes` caps the total size of the regular files an archive (or a
copied directory) declares, checked from the tar headers before anything is written, so a
4.7 MB archive that expands to 1 GB is refused without touching the disk. Unpacked files are
the user's alone (files 0600, or 0700 when executable; directories 0700).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tideserve.errors import NotFoundError, ValidationError

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
# The default cap on a model's unpacked size: 30 GB, the ML storage volume an EBS-backed
# SageMaker hosting instance gets by default (VolumeSizeInGB); `--max-model-size` changes it.
DEFAULT_MAX_MODEL_BYTES = 30 * 10**9
_PRIVATE_FILE, _PRIVATE_EXEC, _PRIVATE_DIR = 0o600, 0o700, 0o700


def fetch_model_data(url: str, dest: Path, object_store_root: Path | None,
                     storage_options: Mapping[str, Any] | None = None,
                     max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> Path:
    """Materialise `url` as the model directory `dest` and return it. `storage_options` go to
    fsspec for a URL it fetches (an external object store's endpoint and keys); more than
    `max_bytes` unpacked is refused (ValidationError)."""
    dest = Path(dest)
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        tree = staging / "model"
        tree.mkdir()
        local = _local_path(url, object_store_root)
        if local is None:
            _fetch_remote(url, staging, tree, storage_options or {}, max_bytes)
        else:
            _materialise(local, tree, url, max_bytes)
        _make_private(tree)
        os.replace(tree, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def local_source(url: str, object_store_root: Path | None) -> Path | None:
    """The local file or directory `url` names, or None when fsspec must fetch it."""
    return _local_path(url, object_store_root)


def _local_path(url: str, object_store_root: Path | None) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "s3" and object_store_root is not None:
        key = parsed.path.lstrip("/")
        if not parsed.netloc or not key or ".." in key.split("/"):
            raise ValidationError(f"ModelDataUrl {url!r} is not a valid s3://bucket/key URL.")
        path = Path(object_store_root) / parsed.netloc / key
    elif parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValidationError(f"ModelDataUrl {url!r} names a remote host; use file:///path.")
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        path = Path(url)
    else:
        return None
    if not path.exists():
        raise NotFoundError(f"ModelDataUrl {url!r} does not exist (looked at {path}).")
    return path


def _materialise(source: Path, tree: Path, url: str, max_bytes: int) -> None:
    if source.is_dir():
        _copy_tree(source, tree, max_bytes)
    elif _is_archive(source):
        extract_archive(source, tree, max_bytes)
    else:
        _check_size(source.stat().st_size, max_bytes, source.name)
        shutil.copy2(source, tree / source.name)


def _check_size(total: int, max_bytes: int, what: str) -> None:
    if total > max_bytes:
        raise ValidationError(
            f"Model data {what} unpacks to {total} bytes, more than the {max_bytes} bytes "
            "allowed per model (tideserve up --max-model-size)."
        )


def _make_private(tree: Path) -> None:
    """Owner-only modes for everything unpacked; an executable stays executable."""
    for path in [tree, *tree.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(_PRIVATE_DIR)
        else:
            path.chmod(_PRIVATE_EXEC if path.stat().st_mode & 0o100 else _PRIVATE_FILE)


def _is_archive(path: Path) -> bool:
    """By name or by content: a damaged model.tar.gz must fail, not be copied as a file."""
    if path.name.lower().endswith(_ARCHIVE_SUFFIXES):
        return True
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":  # gzip magic
            return True
    return tarfile.is_tarfile(path)


def _fetch_remote(url: str, staging: Path, tree: Path, options: Mapping[str, Any],
                  max_bytes: int) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **options)
    if not fs.exists(path):
        raise NotFoundError(f"ModelDataUrl {url!r} does not exist.")
    if fs.isdir(path):
        download = staging / "download"
        fs.get(path.rstrip("/") + "/", str(download), recursive=True)
        _copy_tree(download, tree, max_bytes)
        return
    download = staging / posixpath.basename(path.rstrip("/"))
    fs.get(path, str(download))
    _materialise(download, tree, url, max_bytes)


def _copy_tree(source: Path, tree: Path, max_bytes: int) -> None:
    """Copy a model directory; its symbolic links must stay inside it."""
    root = source.resolve()
    total = sum(p.stat().st_size for p in source.rglob("*") if p.is_file() and not p.is_symlink())
    _check_size(total, max_bytes, source.name)
    for link in (p for p in source.rglob("*") if p.is_symlink()):
        target = os.readlink(link)
        if os.path.isabs(target) or not link.resolve().is_relative_to(root):
            raise ValidationError(
                f"Model directory {source}: {link.relative_to(source)} links outside the "
                f"directory (to {target!r})."
            )
    shutil.copytree(source, tree, symlinks=True, dirs_exist_ok=True)


def extract_archive(archive: Path, tree: Path,
                    max_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> None:
    """Extract a tar archive into the empty directory `tree`, refusing unsafe members and
    archives that unpack to more than `max_bytes`."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            if not members and not _is_empty_tar(tar):
                raise ValidationError(f"Archive {archive.name} is not a tar archive.")
            check_members(members, archive.name)
            _check_size(sum(m.size for m in members if m.isreg()), max_bytes, archive.name)
            tar.extractall(tree, members=members, filter=_private_data_filter)
    except tarfile.FilterError as exc:
        raise ValidationError(f"Archive {archive.name}: refused member: {exc}") from None
    except tarfile.ReadError as exc:
        raise ValidationError(
            f"Archive {archive.name} is not a tar archive ({_first_line(exc)})."
        ) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValidationError(f"Archive {archive.name} cannot be read: {exc}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":")


def _is_empty_tar(tar: tarfile.TarFile) -> bool:
    """A tar with no members is all zero blocks; a compressed stream of anything else that
    tarfile read as 'no members' (it stops at the first block it cannot parse) is not a tar."""
    fileobj = tar.fileobj
    if fileobj is None:
        return True
    fileobj.seek(0)
    head = fileobj.read(10240)
    return not head.strip(b"\0")


def _private_data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, then owner-only modes (it leaves files group/world-readable)."""
    checked = tarfile.data_filter(member, path)
    if checked is None or checked.mode is None:
        return checked
    if checked.isdir():
        mode = _PRIVATE_DIR
    else:
        mode = _PRIVATE_EXEC if checked.mode & 0o100 else _PRIVATE_FILE
    return checked.replace(mode=mode, deep=False)


def check_members(members: list[tarfile.TarInfo], archive: str) -> None:
    """Refuse, before writing anything, any member that could land outside the tree."""
    links: set[str] = set()
    for member in members:
        _no_absolute(member.name, member.name, archive)
        if ".." in _parts(member.name):
            _refuse(archive, member.name, "has a '..' component")
        name = _walk(_parts(member.name), links, member.name, archive, "is written through")
        if member.ischr() or member.isblk() or member.isfifo():
            _refuse(archive, member.name, "is a device or FIFO")
        if member.issym():
            _no_absolute(member.linkname, member.name, archive)
            parent = _parts(name)[:-1]
            _walk(parent + _parts(member.linkname), links, member.name, archive, "links through")
            links.add(name)
        elif member.islnk():
            _no_absolute(member.linkname, member.name, archive)
            if ".." in _parts(member.linkname):
                _refuse(archive, member.name, f"hard-links outside ({member.linkname!r})")
            _walk(_parts(member.linkname), links, member.name, archive, "hard-links through")


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]


def _no_absolute(path: str, member: str, archive: str) -> None:
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        _refuse(archive, member, f"has an absolute path ({path!r})")


def _walk(parts: list[str], links: set[str], member: str, archive: str, verb: str) -> str:
    """Resolve `parts` from the tree's root without following links: refuse a path that
    climbs above the root or passes through (or ends at) an earlier symbolic link member."""
    resolved: list[str] = []
    for part in parts:
        if part == "..":
            if not resolved:
                _refuse(archive, member, f"leads outside the model directory ({'/'.join(parts)!r})")
            resolved.pop()
            continue
        resolved.append(part)
        if "/".join(resolved) in links:
            _refuse(archive, member, f"{verb} the symbolic link {'/'.join(resolved)!r}")
    return "/".join(resolved)


def _refuse(archive: str, member: str, why: str) -> None:
    raise ValidationError(f"Archive {archive}: member {member!r} {why}; refusing to unpack it.")
