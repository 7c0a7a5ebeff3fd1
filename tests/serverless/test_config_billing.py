"""ServerlessConfig rules (spec §2.3) and GB-second billing rows (spec §6.1)."""

from __future__ import annotations

import pytest

from tideserve.cost.billing import Interval, cost_of
from tideserve.errors import ValidationError
from tideserve.serverless import config as sc
from tideserve.serverless.billing import Metered, usage_rows

MODEL = {"VariantName": "v", "ModelName": "m"}


def config_of(serverless: dict, **extra) -> dict:
    return {"ProductionVariants": [{**MODEL, "ServerlessConfig": serverless}], **extra}


@pytest.mark.parametrize("serverless, message", [
    ({"MemorySizeInMB": 1536, "MaxConcurrency": 1}, "Member must be one of"),
    ({"MemorySizeInMB": 1024, "MaxConcurrency": 201}, "between 1 and 200"),
    ({"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 3},
     "less than or equal to MaxConcurrency"),
    ({"MaxConcurrency": 2}, "MemorySizeInMB is required"),
])
def test_serverless_config_limits(serverless, message) -> None:
    with pytest.raises(ValidationError, match=message):
        sc.check_endpoint_config(config_of(serverless))


@pytest.mark.parametrize("extra, message", [
    ({"AsyncInferenceConfig": {"OutputConfig": {}}}, "AsyncInferenceConfig"),
    ({"DataCaptureConfig": {"InitialSamplingPercentage": 5}}, "data capture"),
])
def test_serverless_excludes_async_and_data_capture(extra, message) -> None:
    with pytest.raises(ValidationError, match=message):
        sc.check_endpoint_config(config_of({"MemorySizeInMB": 1024, "MaxConcurrency": 1},
                                           **extra))


def test_a_serverless_config_has_one_variant_and_no_instance_fields() -> None:
    one = {"MemorySizeInMB": 1024, "MaxConcurrency": 1}
    two = {"ProductionVariants": [{**MODEL, "ServerlessConfig": one},
                                  {**MODEL, "VariantName": "w", "ServerlessConfig": one}]}
    with pytest.raises(ValidationError, match="exactly one production variant"):
        sc.check_endpoint_config(two)
    with pytest.raises(ValidationError, match="cannot specify InstanceType"):
        sc.check_endpoint_config({"ProductionVariants": [
            {**MODEL, "ServerlessConfig": one, "InstanceType": "ml.m5.large"}]})


def test_describe_reports_configs_instead_of_instance_counts() -> None:
    variant = sc.variant_from_config({**MODEL, "ServerlessConfig": {
        "MemorySizeInMB": 2048, "MaxConcurrency": 4, "ProvisionedConcurrency": 1}})
    summary = sc.variant_summary({"VariantName": "v", "CurrentInstanceCount": 0,
                                  "DesiredInstanceCount": 0}, variant)
    assert summary == {"VariantName": "v", "DesiredServerlessConfig": {
        "MemorySizeInMB": 2048, "MaxConcurrency": 4, "ProvisionedConcurrency": 1}}


def test_serverless_update_changes_concurrency_and_refuses_instance_counts() -> None:
    variant = sc.variant_from_config({**MODEL, "ServerlessConfig": {
        "MemorySizeInMB": 2048, "MaxConcurrency": 4}})
    sc.apply_update(variant, {"ServerlessUpdateConfig": {"ProvisionedConcurrency": 2}})
    assert variant["DesiredServerlessConfig"]["ProvisionedConcurrency"] == 2
    with pytest.raises(ValidationError, match="use ServerlessUpdateConfig"):
        sc.apply_update(variant, {"DesiredInstanceCount": 2})
    with pytest.raises(ValidationError, match="less than or equal"):
        sc.apply_update(variant, {"ServerlessUpdateConfig": {"MaxConcurrency": 1}})


def test_worker_type_scales_vcpus_with_memory() -> None:
    vcpus = [sc.ServerlessConfig(mb, 1).instance_type().vcpu for mb in sc.MEMORY_SIZES_MB]
    assert vcpus == [1, 1, 2, 2, 3, 3]
    assert sc.ServerlessConfig(3072, 1).instance_type().memory_gib == 3.0


def test_billing_rows_cost_exactly_the_gb_seconds() -> None:
    # 0.25 s at 2 GB: one billed second whose rate makes it cost 0.25 x 2 x $0.00002.
    who = Metered("arn:aws:sagemaker:us-east-1:1:endpoint/e", "e", "v", 2048)
    (row,) = usage_rows(who, 0.25, 120.0, 60.0)
    assert row.instance_type == "ml.serverless.2gb"
    assert cost_of(row.interval(0), row.rate_per_hour, Interval(0, 1e9)) == pytest.approx(1e-5)


def test_concurrent_duration_beyond_the_period_stays_inside_it() -> None:
    # 150 s of duration (three requests at once for 50 s) in a 60 s period at 1 GB.
    who = Metered("arn", "e", "v", 1024)
    rows = usage_rows(who, 150.0, 600.0, 60.0)
    assert [(r.start, r.end) for r in rows] == [(600, 660), (600, 660), (600, 630)]
    total = sum(cost_of(r.interval(0), r.rate_per_hour, Interval(0, 1e9)) for r in rows)
    assert total == pytest.approx(150 * 0.00002)
