"""Two servers on one database race for the same endpoint: each change is one transaction, so
exactly one of two conflicting calls wins and the other gets AWS's error for the state the
winner left, never a lost change or a database error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tideserve.clock import FakeClock
from tideserve.control.names import Arns
from tideserve.control.sagemaker import SageMakerService
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.db import make_engine
from tideserve.errors import AlreadyExistsError, ConflictError, TideserveError, ValidationError
from tideserve.schema import create_all

ARNS = Arns("us-east-1", "123456789012")
ROUNDS = 8


@pytest.fixture
def servers(tmp_path) -> tuple[SageMakerService, SageMakerService]:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    engine = make_engine(url)
    create_all(engine)
    a = SageMakerService(ControlStore(engine), ARNS, Catalog.default(), FakeClock())
    b = SageMakerService(ControlStore(make_engine(url)), ARNS, Catalog.default(), FakeClock())
    a.create_model({"ModelName": "m", "PrimaryContainer": {
        "Image": "tideserve/sklearn", "ModelDataUrl": "s3://b/k"}})
    a.create_endpoint_config({"EndpointConfigName": "c", "ProductionVariants": [{
        "VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}]})
    return a, b


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, one thread each; each outcome is a result or the error raised."""
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = calls[i]()
        except TideserveError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def errors(outcomes: list[Any]) -> list[type]:
    return sorted((type(o) for o in outcomes if isinstance(o, Exception)), key=str)


def test_one_of_two_creates_of_a_name_wins_and_the_other_is_told_it_exists(servers) -> None:
    a, b = servers
    def create(svc: SageMakerService, name: str) -> Callable[[], Any]:
        return lambda: svc.create_endpoint({"EndpointName": name, "EndpointConfigName": "c"})

    for i in range(ROUNDS):  # the names differ only in case: one endpoint
        outcomes = race(create(a, f"e{i}"), create(b, f"E{i}"))
        assert errors(outcomes) == [AlreadyExistsError], outcomes


def test_one_of_two_capacity_changes_wins_and_the_other_sees_the_endpoint_updating(
    servers,
) -> None:
    a, b = servers
    a.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    for _ in range(ROUNDS):
        a.store.modify_endpoint("e", lambda row: setattr(row, "status", "InService") or True)
        before = a.store.get_endpoint("e")
        assert before is not None

        def scale(svc: SageMakerService, n: int) -> Callable[[], Any]:
            return lambda: svc.update_endpoint_weights_and_capacities({
                "EndpointName": "e", "DesiredWeightsAndCapacities": [
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": n}]})

        outcomes = race(scale(a, 2), scale(b, 3))
        assert errors(outcomes) == [ConflictError], outcomes
        winner = 2 if not isinstance(outcomes[0], Exception) else 3
        after = b.store.get_endpoint("e")
        assert after is not None and after.status == "Updating"
        assert after.variants[0]["DesiredInstanceCount"] == winner
        assert after.generation == before.generation + 1


def test_two_add_tags_cannot_together_pass_the_limit_of_fifty(servers) -> None:
    a, b = servers
    arn = ARNS.model("m")
    outcomes = race(
        lambda: a.add_tags({"ResourceArn": arn, "Tags": [
            {"Key": f"a{k}", "Value": "x"} for k in range(30)]}),
        lambda: b.add_tags({"ResourceArn": arn, "Tags": [
            {"Key": f"b{k}", "Value": "x"} for k in range(30)]}),
    )
    assert errors(outcomes) == [ValidationError], outcomes
    assert len(a.list_tags({"ResourceArn": arn, "MaxResults": 100})["Tags"]) == 30
