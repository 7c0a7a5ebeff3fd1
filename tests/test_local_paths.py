"""Paths a user types are relative to where they type them: the CLI makes a local
--model-data absolute before it reaches the server (which has a working directory of its own),
and `tideserve up` resolves its state dir once, since instances run in their model folders."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tideserve.cli import deploy_spec
from tideserve.settings import Settings


def flags(**given: object) -> argparse.Namespace:
    defaults = {"file": None, "name": "cancer", "model_data": None, "image": "tideserve/sklearn",
                "instance_type": "ml.m5.large", "instance_count": 1, "env": []}
    return argparse.Namespace(**{**defaults, **given})


def test_a_relative_model_data_path_is_taken_from_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = deploy_spec(flags(model_data="models/model.tar.gz"))
    assert spec["model"]["model_data_url"] == str(tmp_path.resolve() / "models/model.tar.gz")


@pytest.mark.parametrize("url", ["s3://models/cancer/model.tar.gz",
                                 "file:///srv/models/model.tar.gz", "/srv/models/model.tar.gz"])
def test_urls_and_absolute_paths_go_as_given(url: str) -> None:
    assert deploy_spec(flags(model_data=url))["model"]["model_data_url"] == url


def test_a_deploy_file_s_relative_model_path_is_relative_to_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "project").mkdir()
    spec_file = tmp_path / "project" / "deploy.yaml"
    spec_file.write_text("name: cancer\nmodel: {image: tideserve/sklearn, "
                         "model_data_url: model.tar.gz}\n")
    monkeypatch.chdir(tmp_path)
    spec = deploy_spec(flags(file=Path("project/deploy.yaml"), name=None))
    assert spec["model"]["model_data_url"] == str(tmp_path.resolve() / "project/model.tar.gz")


def test_the_state_dir_is_absolute_from_the_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings(state_dir=Path(".tideserve")).state_dir == tmp_path.resolve() / ".tideserve"
    assert Settings().state_dir == tmp_path.resolve() / ".tideserve"
