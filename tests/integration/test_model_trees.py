"""Model data on disk is bounded and shared: an archive that expands past the cap fails its
endpoint with the reason and leaves nothing under state/models; two endpoints on the same
data share one unpacked tree; deleting the endpoints removes it."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from tests.integration.test_realtime_endpoints import deploy, wait_in_service, wait_until_created
from tests.support import pack_skops, start_server, stop_server, train_breast_cancer

pytestmark = pytest.mark.integration


def _trees(server) -> list[str]:
    root = server.state_dir / "models"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_model_trees_are_capped_shared_and_removed(tmp_path):
    model, _ = train_breast_cancer("logistic")
    archive = pack_skops(model, tmp_path / "model")
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:  # ~3 KB that unpacks to 3 MB
        info = tarfile.TarInfo("weights.bin")
        info.size = 3_000_000
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    server = start_server(tmp_path / "state", extra=["--max-model-size", "0.002"])  # 2 MB
    try:
        sm = server.client("sagemaker")
        deploy(sm, "bomb", str(bomb))
        desc = wait_until_created(sm, "bomb")
        assert desc["EndpointStatus"] == "Failed"
        assert "unpacks to 3000000 bytes, more than the 2000000 bytes" in desc["FailureReason"]
        assert _trees(server) == []

        deploy(sm, "one", str(archive), model="model-one")
        deploy(sm, "two", str(archive), model="model-two")  # another model, the same data
        wait_in_service(sm, "one")
        wait_in_service(sm, "two")
        assert len(_trees(server)) == 1

        sm.delete_endpoint(EndpointName="one")
        _wait_for(lambda: not sm.list_endpoints(NameContains="one")["Endpoints"], 30, "delete")
        assert len(_trees(server)) == 1, "endpoint two still serves from it"
        sm.delete_endpoint(EndpointName="two")
        _wait_for(lambda: _trees(server) == [], 30, "the tree to be removed")
    finally:
        stop_server(server)
