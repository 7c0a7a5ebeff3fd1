"""The multi-model instance's settings and the router's TargetModel rules, without processes
(the whole path runs in tests/integration/test_multi_model_endpoints.py)."""

from __future__ import annotations

import json

import pytest

from tideserve.api.runtime_wire import runtime_error_response
from tideserve.errors import ValidationError
from tideserve.serving.multi_model import budgets_from, join_target
from tideserve.serving.multi_model_route import target_model
from tideserve.serving.routes import Backend, VariantRoute

GIB = 2**30


@pytest.mark.parametrize("memory_gib, budget_gib", [
    (8, 6),  # ml.m5.large: 25 % kept for the runtime
    (4, 3),  # ml.t2.medium: 1 GiB kept (the floor)
    (2, 1),
    (64, 48),
])
def test_the_memory_budget_is_the_instance_memory_less_the_runtimes_share(
        memory_gib: int, budget_gib: int) -> None:
    budgets = budgets_from({"TIDESERVE_INSTANCE_MEMORY_BYTES": str(memory_gib * GIB)})
    assert budgets.memory_bytes == budget_gib * GIB


def test_the_budget_can_be_set_in_the_containers_environment() -> None:
    budgets = budgets_from({"TIDESERVE_INSTANCE_MEMORY_BYTES": str(8 * GIB),
                            "TIDESERVE_MODEL_CACHE_MEMORY_MB": "1.5",
                            "TIDESERVE_MODEL_CACHE_DISK_MB": "100"})
    assert (budgets.memory_bytes, budgets.disk_bytes) == (int(1.5 * 2**20), 100 * 2**20)


@pytest.mark.parametrize("prefix", ["s3://b/models/", "s3://b/models"])
def test_the_target_is_joined_under_the_prefix(prefix: str) -> None:
    assert join_target(prefix, "client-017.tar.gz") == "s3://b/models/client-017.tar.gz"


def variant(multi_model: bool) -> VariantRoute:
    return VariantRoute("AllTraffic", 1.0, [Backend("i-1", "http://x", multi_model=multi_model)])


def test_target_model_on_a_single_model_endpoint_says_so_in_its_error_code() -> None:
    with pytest.raises(ValidationError) as info:
        target_model({"x-amzn-sagemaker-target-model": "a.tar.gz"}, "ep", variant(False))
    body = json.loads(runtime_error_response(info.value).body)
    assert body == {"ErrorCode": "TARGET_MODEL_HEADER_NOT_SUPPORTED", "message": (
        "Endpoint ep is not a multi-model endpoint and does not support target model header.")}


def test_a_multi_model_endpoint_needs_a_target_model() -> None:
    with pytest.raises(ValidationError, match="is missing a target model header"):
        target_model({}, "ep", variant(True))
    assert target_model({"x-amzn-sagemaker-target-model": "m.tar.gz"}, "ep",
                        variant(True)) == "m.tar.gz"
    assert target_model({}, "ep", variant(False)) is None
