"""Model artifacts on local disk, fetched and unpacked once per model and reused by every
instance that serves it."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideserve.objectstore.remote import FsspecObjects
from tideserve.serving.archive import fetch_model_data
from tideserve.serving.images import resolve_runtime
from tideserve.serving.sourcedir import (
    SUBMIT_DIRECTORY_ENV,
    check_requirements,
    install_submit_directory,
)

SERVE_COMMAND_ENV = "TIDESERVE_SERVE_COMMAND"


@dataclass(frozen=True)
class PreparedModel:
    model_dir: Path
    runtime: str
    environment: dict[str, str]
    command: str | None


class ModelCache:
    def __init__(self, root: Path, object_store_root: Path,
                 external: FsspecObjects | None = None) -> None:
        self.root = root
        self.object_store_root = object_store_root
        self.external = external  # --object-store: s3:// model data lives there instead
        self._ready: dict[str, PreparedModel] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def prepare(self, model_row: Any) -> PreparedModel:
        key = f"{model_row.name_lower}-{int(model_row.creation_time * 1000)}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._ready:
                self._ready[key] = await asyncio.to_thread(self._unpack, key, model_row.spec)
        return self._ready[key]

    def _unpack(self, key: str, spec: dict[str, Any]) -> PreparedModel:
        container = spec.get("PrimaryContainer") or spec["Containers"][0]
        dest = self.root / re.sub(r"[^a-z0-9-]", "-", key)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        model_dir = self._fetch(container["ModelDataUrl"], dest)
        env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        if env.get(SUBMIT_DIRECTORY_ENV):
            install_submit_directory(env[SUBMIT_DIRECTORY_ENV], model_dir, self._fetch)
        command = env.get(SERVE_COMMAND_ENV)
        if command is None:  # a user's own server brings its own environment
            check_requirements(model_dir / "code")
        return PreparedModel(
            model_dir=model_dir,
            runtime=resolve_runtime(container["Image"]),
            environment=env,
            command=command,
        )

    def _fetch(self, url: str, dest: Path) -> Path:
        """A ModelDataUrl (or a submit directory) as the local directory `dest`."""
        if self.external is not None and url.startswith("s3://"):
            return fetch_model_data(self.external.url(url), dest, None, self.external.options)
        return fetch_model_data(url, dest, self.object_store_root)
