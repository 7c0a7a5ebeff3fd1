"""Fixtures shared by the tideserve.api tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import botocore.session
import pytest


@pytest.fixture(scope="session")
def forced_cloudwatch_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of botocore's CloudWatch model that declare only one protocol each, so a stock
    botocore client speaks Query or RPC v2 CBOR instead of the json it would pick."""
    loader = botocore.session.get_session().get_component("data_loader")
    original = loader.load_service_model("cloudwatch", "service-2")
    version = original["metadata"]["apiVersion"]
    paths = {}
    for protocol in ("query", "smithy-rpc-v2-cbor"):
        model = copy.deepcopy(original)
        model["metadata"]["protocols"] = [protocol]
        model["metadata"]["protocol"] = protocol
        root = tmp_path_factory.mktemp(protocol)
        target = root / "cloudwatch" / version
        target.mkdir(parents=True)
        (target / "service-2.json").write_text(json.dumps(model))
        paths[protocol] = root
    return paths
