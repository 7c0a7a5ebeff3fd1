"""What a multi-model instance is given to start: its own archive cache, and where the prefix
is read from (the embedded store's directory, or an external store's URL and options)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tideserve.control.models import ModelCache
from tideserve.objectstore.remote import FsspecObjects


def row(url: str, **container) -> SimpleNamespace:
    return SimpleNamespace(spec={"PrimaryContainer": {
        "Image": "tideserve/xgboost", "Mode": "MultiModel", "ModelDataUrl": url,
        "Environment": {"A": "1"}, **container}})


def test_an_instance_reads_the_embedded_store_and_has_a_cache_of_its_own(tmp_path: Path):
    cache = ModelCache(tmp_path / "models", tmp_path / "s3")
    prepared = asyncio.run(cache.prepare(row("s3://models/clients/"), holder="ep-1"))
    env = prepared.environment
    assert prepared.multi_model and prepared.runtime == "xgboost"
    assert prepared.model_dir.is_dir() and list(prepared.model_dir.iterdir()) == []
    assert env["A"] == "1" and env["SAGEMAKER_MULTI_MODEL"] == "true"
    assert env["TIDESERVE_MULTI_MODEL_URL"] == env["TIDESERVE_MULTI_MODEL_SOURCE"]
    assert env["TIDESERVE_MULTI_MODEL_OBJECT_ROOT"] == str(tmp_path / "s3")
    assert env["TIDESERVE_MODEL_CACHE_SETTING"] == "Enabled"
    asyncio.run(cache.release("ep-1"))
    assert not prepared.model_dir.exists()


@pytest.mark.parametrize("url, source", [
    ("s3://models/clients/", "file://{root}/models/clients/"),
    ("s3://models/clients", "file://{root}/models/clients"),
    ("s3://models/", "file://{root}/models/"),
])
def test_with_an_external_store_the_prefix_maps_onto_it(tmp_path: Path, url, source):
    external = FsspecObjects(f"file://{tmp_path}/ext", {"auto_mkdir": True})
    cache = ModelCache(tmp_path / "models", tmp_path / "s3", external)
    prepared = asyncio.run(cache.prepare(
        row(url, MultiModelConfig={"ModelCacheSetting": "Disabled"}), holder="ep-2"))
    env = prepared.environment
    assert env["TIDESERVE_MULTI_MODEL_SOURCE"] == source.format(root=f"{tmp_path}/ext")
    assert "TIDESERVE_MULTI_MODEL_OBJECT_ROOT" not in env
    assert json.loads(env["TIDESERVE_MULTI_MODEL_STORAGE_OPTIONS"]) == {"auto_mkdir": True}
    assert env["TIDESERVE_MODEL_CACHE_SETTING"] == "Disabled"
