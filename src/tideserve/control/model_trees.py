"""Unpacked model trees on disk: one per version of the model data, shared by every model and
instance that serves it, removed when nothing holds it any more.

A tree's key is the data's version: the SHA-256 of a local archive or file's content, of a
local directory's listing (names, sizes, modification times), or of a remote object's ETag (or
size and modification time where the store gives no ETag). Two models created from the same
`model.tar.gz` therefore share one tree, and a re-uploaded archive gets a new one.

Holders are named (an instance id, a serverless endpoint): `acquire` adds one, `release`
drops it, and the tree goes with its last holder. A failed unpack leaves nothing (archive.py
stages in a temporary sibling). No instance outlives a server run, so `clear` at start
removes whatever a previous run left.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from tideserve.state_files import make_private_dir

_CHUNK = 1 << 20


class ModelTrees:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._holders: dict[str, str] = {}  # holder -> tree key
        self._locks: dict[str, asyncio.Lock] = {}

    def clear(self) -> None:
        """At server start: no tree is in use yet, so every one left on disk is garbage."""
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        make_private_dir(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    async def acquire(self, key: str, holder: str, unpack: Callable[[Path], Path]) -> Path:
        """The tree for `key`, unpacked by `unpack(dest)` (in a thread) if it is not there;
        `holder` keeps it until released. A failed unpack holds nothing."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            dest = self.path(key)
            if not (dest.is_dir() and any(dest.iterdir())):
                try:
                    await asyncio.to_thread(unpack, dest)
                except BaseException:
                    await asyncio.to_thread(shutil.rmtree, dest, True)
                    raise
            previous = self._holders.get(holder)
            self._holders[holder] = key
        if previous is not None and previous != key:
            await self._drop_if_unused(previous)
        return dest

    async def release(self, holder: str) -> None:
        key = self._holders.pop(holder, None)
        if key is not None:
            await self._drop_if_unused(key)

    def holders(self, key: str) -> int:
        return sum(1 for k in self._holders.values() if k == key)

    async def _drop_if_unused(self, key: str) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            if self.holders(key) == 0:
                await asyncio.to_thread(shutil.rmtree, self.path(key), True)


_FILE_VERSIONS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> version


def local_version(path: Path) -> str:
    """The content version of a local file or directory (see the module docstring). A file's
    hash is remembered while its size and modification time stay the same, so starting a
    tenth instance of a 10 GB model does not read it a tenth time."""
    if path.is_file():
        st = path.stat()
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in _FILE_VERSIONS:
            _FILE_VERSIONS[memo] = _hash(path)
        return _FILE_VERSIONS[memo]
    return _hash(path)


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        listing = sorted(
            (str(p.relative_to(path)), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in path.rglob("*")
        )
        digest.update(json.dumps([str(path.resolve()), listing]).encode())
    else:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def remote_version(url: str, info: dict[str, object]) -> str:
    """The version of an object an fsspec store describes with `info`."""
    tag = info.get("ETag") or info.get("etag") or info.get("checksum")
    modified = info.get("mtime") or info.get("LastModified")
    basis = [url, str(tag)] if tag else [url, str(info.get("size")), str(modified)]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:32]
