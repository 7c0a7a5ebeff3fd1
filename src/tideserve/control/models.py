"""Model artifacts on local disk: fetched and unpacked once per version of the model data
(control/model_trees.py), shared by every model and instance that serves it, and removed when
the last instance using it stops."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideserve.control.model_trees import ModelTrees, local_version, remote_version
from tideserve.control.multi_model import instance_environment, is_multi_model
from tideserve.errors import NotFoundError
from tideserve.objectstore.remote import FsspecObjects
from tideserve.serving.archive import DEFAULT_MAX_MODEL_BYTES, fetch_model_data, local_source
from tideserve.serving.images import resolve_runtime
from tideserve.serving.sourcedir import (
    SUBMIT_DIRECTORY_ENV,
    check_requirements,
    install_submit_directory,
)

SERVE_COMMAND_ENV = "TIDESERVE_SERVE_COMMAND"
_MULTI_MODEL_DIR = "multi-model"  # <root>/multi-model/<instance id>: one cache per instance


@dataclass(frozen=True)
class PreparedModel:
    model_dir: Path
    runtime: str
    environment: dict[str, str]
    command: str | None
    multi_model: bool = False  # Mode=MultiModel: model_dir is the instance's archive cache


class ModelCache:
    def __init__(self, root: Path, object_store_root: Path,
                 external: FsspecObjects | None = None,
                 max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES) -> None:
        self.root = root
        self.object_store_root = object_store_root
        self.external = external  # --object-store: s3:// model data lives there instead
        self.max_model_bytes = max_model_bytes
        self.trees = ModelTrees(root)
        self.trees.clear()  # no instance survives a restart: every tree on disk is stale
        # holder -> the holders of its containers' trees (a multi-container instance)
        self._parts: dict[str, list[str]] = {}

    async def prepare(self, model_row: Any, holder: str) -> PreparedModel:
        """The model's unpacked tree, held for `holder` (an instance id) until `release`.
        A SAGEMAKER_SUBMIT_DIRECTORY is part of the tree's version: two models on the same
        data with different code get a tree each."""
        container = model_row.spec.get("PrimaryContainer") or model_row.spec["Containers"][0]
        return await self.prepare_container(container, holder)

    async def prepare_containers(self, containers: list[Mapping[str, Any]],
                                 names: tuple[str, ...], holder: str) -> list[PreparedModel]:
        """Each container's tree of a multi-container model, all held for `holder` until
        `release(holder)`; one that fails releases the others."""
        parts = self._parts.setdefault(holder, [])
        try:
            out = []
            for container, name in zip(containers, names, strict=True):
                parts.append(f"{holder}/{name}")
                out.append(await self.prepare_container(container, parts[-1]))
            return out
        except BaseException:
            await self.release(holder)
            raise

    async def prepare_container(self, container: Mapping[str, Any],
                                holder: str) -> PreparedModel:
        """One ContainerDefinition's tree (see `prepare`)."""
        env = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        if is_multi_model(container):
            return self._multi_model(container, env, holder)
        url, options, root = self._source(container["ModelDataUrl"])
        version = await asyncio.to_thread(_version, url, root, options)
        submit = env.get(SUBMIT_DIRECTORY_ENV)
        if submit:
            version += "-" + hashlib.sha256(submit.encode()).hexdigest()[:12]

        def unpack(dest: Path) -> Path:
            model_dir = self._fetch(container["ModelDataUrl"], dest)
            if submit:
                install_submit_directory(submit, model_dir, self._fetch)
            return model_dir

        model_dir = await self.trees.acquire(version, holder, unpack)
        command = env.get(SERVE_COMMAND_ENV)
        if command is None:  # a user's own server brings its own environment
            check_requirements(model_dir / "code")
        return PreparedModel(
            model_dir=model_dir,
            runtime=resolve_runtime(container["Image"]),
            environment=env,
            command=command,
        )

    async def release(self, holder: str) -> None:
        for part in self._parts.pop(holder, []):
            await self.trees.release(part)
        await self.trees.release(holder)
        shutil.rmtree(self.root / _MULTI_MODEL_DIR / holder, ignore_errors=True)

    def _multi_model(self, container: Mapping[str, Any], env: dict[str, str],
                     holder: str) -> PreparedModel:
        """A multi-model instance fetches its own archives, into a disk cache of its own (a
        directory per instance, removed when it stops); it is told where the prefix is."""
        cache_dir = self.root / _MULTI_MODEL_DIR / holder
        cache_dir.mkdir(parents=True, exist_ok=True)
        source, options, root = self._prefix_source(container["ModelDataUrl"])
        env = {**env, **instance_environment(container, source, root, options,
                                             self.max_model_bytes)}
        return PreparedModel(model_dir=cache_dir, runtime=resolve_runtime(container["Image"]),
                             environment=env, command=None, multi_model=True)

    def _source(self, url: str) -> tuple[str, dict[str, Any] | None, Path | None]:
        if self.external is not None and url.startswith("s3://"):
            return self.external.url(url), dict(self.external.options), None
        return url, None, self.object_store_root

    def _prefix_source(self, url: str) -> tuple[str, dict[str, Any] | None, Path | None]:
        """_source for a key prefix, which may be a whole bucket (`s3://bucket/`): mapped as
        a key under it would be, less the key."""
        if self.external is None or not url.startswith("s3://"):
            return self._source(url)
        mapped, options, root = self._source(url.rstrip("/") + "/_")
        return mapped[:-1] if url.endswith("/") else mapped[:-2], options, root

    def _fetch(self, url: str, dest: Path) -> Path:
        """A ModelDataUrl (or a submit directory) as the local directory `dest`."""
        source, options, root = self._source(url)
        return fetch_model_data(source, dest, root, options, self.max_model_bytes)


def _version(url: str, root: Path | None, options: dict[str, Any] | None) -> str:
    local = local_source(url, root)
    if local is not None:
        return local_version(local)
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(options or {}))
    if not fs.exists(path):
        raise NotFoundError(f"ModelDataUrl {url!r} does not exist.")
    return remote_version(url, dict(fs.info(path)))
