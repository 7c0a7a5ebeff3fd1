"""A variant scales in exactly one dimension: instance count for instance variants,
provisioned concurrency for serverless ones. RegisterScalableTarget refuses the other, through
the real AAS service layer and the real capacity port over endpoint rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tideserve.autoscaling import tables  # noqa: F401  (registers the tables)
from tideserve.autoscaling.aas_api import AutoScalingApi
from tideserve.autoscaling.store import ScalingStore
from tideserve.clock import FakeClock
from tideserve.control.capacity import EndpointCapacity
from tideserve.control.kinds import VariantKinds
from tideserve.control.store import EndpointRow
from tideserve.db import make_engine, metadata, sqlite_url
from tideserve.errors import ValidationError
from tideserve.schema import create_all
from tideserve.serverless.config import variant_from_config
from tideserve.serverless.kind import ServerlessKind
from tideserve.settings import Settings

INSTANCES = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED = "sagemaker:variant:DesiredProvisionedConcurrency"


def row(name: str, variant: dict) -> EndpointRow:
    return EndpointRow(name, f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}", name,
                       None, "InService", None, [variant], 0.0, 0.0)


class Endpoints:
    """The store's one read the capacity port uses."""

    def __init__(self, *rows: EndpointRow) -> None:
        self.rows = {r.name.lower(): r for r in rows}

    def get_endpoint(self, name: str) -> EndpointRow | None:
        return self.rows.get(name.lower())


@pytest.fixture
def aas(tmp_path: Path) -> Iterator[AutoScalingApi]:
    serverless = variant_from_config({
        "VariantName": "AllTraffic", "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 4,
                             "ProvisionedConcurrency": 1}})
    instances = {"VariantName": "AllTraffic", "ModelName": "m", "DesiredInstanceCount": 1,
                 "CurrentInstanceCount": 1, "DesiredWeight": 1.0, "CurrentWeight": 1.0}
    store = Endpoints(row("sl", serverless), row("rt", instances))
    port = EndpointCapacity(  # type: ignore[arg-type]
        SimpleNamespace(store=store, kinds=VariantKinds([ServerlessKind()])))
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    metadata.create_all(engine)
    try:
        yield AutoScalingApi(ScalingStore(engine), port, FakeClock(1_700_000_000.0),
                             Settings(state_dir=tmp_path))
    finally:
        engine.dispose()


def register(aas: AutoScalingApi, endpoint: str, dimension: str) -> dict:
    return aas.register_scalable_target({
        "ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic",
        "ScalableDimension": dimension, "MinCapacity": 1, "MaxCapacity": 3})


@pytest.mark.parametrize("endpoint, wrong, right", [
    ("sl", INSTANCES, PROVISIONED),  # serverless: no instance count to scale
    ("rt", PROVISIONED, INSTANCES),  # instances: no provisioned concurrency to scale
])
def test_a_variant_registers_only_in_its_own_dimension(aas, endpoint, wrong, right) -> None:
    with pytest.raises(ValidationError, match=f"{wrong} is not valid .* scaled by {right}"):
        register(aas, endpoint, wrong)
    assert register(aas, endpoint, right)["ScalableTargetARN"]
    targets = aas.describe_scalable_targets({"ServiceNamespace": "sagemaker"})
    assert [t["ScalableDimension"] for t in targets["ScalableTargets"]] == [right]
