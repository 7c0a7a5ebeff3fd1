"""One unpacked tree per version of the model data, held by name, gone with its last holder."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tideserve.control.models import ModelCache
from tideserve.errors import ValidationError


def _archive(path: Path, content: bytes) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return path


def _model(url: str) -> SimpleNamespace:
    return SimpleNamespace(spec={"PrimaryContainer": {
        "Image": "tideserve/sklearn", "ModelDataUrl": url}})


def _trees(root: Path) -> list[Path]:
    return sorted(root.iterdir())


def test_two_models_on_the_same_data_share_one_tree_until_the_last_holder_goes(tmp_path):
    a = _archive(tmp_path / "a.tar.gz", b"weights")
    copy = tmp_path / "copy"
    copy.mkdir()
    b = _archive(copy / "a.tar.gz", b"weights")  # same bytes, another object
    cache = ModelCache(tmp_path / "models", tmp_path / "s3")

    async def scenario() -> None:
        first = await cache.prepare(_model(str(a)), holder="i-1")
        second = await cache.prepare(_model(str(b)), holder="i-2")
        assert first.model_dir == second.model_dir
        assert _trees(cache.root) == [first.model_dir]
        await cache.release("i-1")
        assert first.model_dir.is_dir(), "i-2 still uses it"
        await cache.release("i-2")
        assert _trees(cache.root) == []

    asyncio.run(scenario())


def test_new_data_gets_a_new_tree(tmp_path):
    cache = ModelCache(tmp_path / "models", tmp_path / "s3")

    async def scenario() -> None:
        old = await cache.prepare(_model(str(_archive(tmp_path / "v1.tar.gz", b"1"))), "i-1")
        new = await cache.prepare(_model(str(_archive(tmp_path / "v2.tar.gz", b"2"))), "i-2")
        assert old.model_dir != new.model_dir

    asyncio.run(scenario())


def test_a_refused_archive_holds_nothing_and_leaves_nothing(tmp_path):
    big = _archive(tmp_path / "big.tar.gz", bytes(5000))
    cache = ModelCache(tmp_path / "models", tmp_path / "s3", max_model_bytes=1000)
    with pytest.raises(ValidationError, match="more than the 1000 bytes"):
        asyncio.run(cache.prepare(_model(str(big)), holder="i-1"))
    assert _trees(cache.root) == []


def test_trees_left_by_a_previous_run_are_removed_at_start(tmp_path):
    stale = tmp_path / "models" / "0123abcd"
    stale.mkdir(parents=True)
    (stale / "model.txt").write_text("old")
    cache = ModelCache(tmp_path / "models", tmp_path / "s3")
    assert _trees(cache.root) == []
