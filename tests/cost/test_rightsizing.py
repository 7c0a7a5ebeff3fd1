"""Rightsizing reads like the seed's cost guide: an ml.m5.4xlarge at 5 % CPU and 10 % memory for
24 h is advised down to ml.m5.large, -87.5 %; a saturated one up; an idle one terminated."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.cost.builders import DAY, Fleet, at
from tideserve.clock import FakeClock
from tideserve.cost.catalog import Catalog
from tideserve.cost.ledger import Ledger
from tideserve.cost.rightsizing import VariantUtilisation, recommend
from tideserve.cost.rightsizing_api import Rightsizing
from tideserve.cost.rightsizing_data import gather
from tideserve.db import metadata
from tideserve.errors import ValidationError
from tideserve.metrics.aggregator import MetricAggregator
from tideserve.metrics.model import dimensions
from tideserve.metrics.store import MetricStore
from tideserve.metrics.tables import metric_datapoints, metric_series

T0 = at("2024-03-11 00:00:00")


def history(engine: Engine, clock: FakeClock, endpoint: str, cpu: float, memory: float,
            invocations: float, hours: int = 24) -> MetricStore:
    """A minute-by-minute metric history of one variant: CPUUtilization (SageMaker's 0..vCPU x
    100 %), MemoryUtilization and Invocations, as the sampler and router publish them."""
    metadata.create_all(engine, tables=[metric_series, metric_datapoints])
    store = MetricStore(engine)
    agg = MetricAggregator(60.0, clock)
    dims = dimensions(EndpointName=endpoint, VariantName="AllTraffic")
    for minute in range(hours * 60):
        t = T0 + 60 * minute
        agg.record("/aws/sagemaker/Endpoints", "CPUUtilization", dims, cpu, "Percent",
                   timestamp=t)
        agg.record("/aws/sagemaker/Endpoints", "MemoryUtilization", dims, memory, "Percent",
                   timestamp=t)
        if invocations:
            agg.record("AWS/SageMaker", "Invocations", dims, 1.0, "None", timestamp=t,
                       count=invocations)
    store.put(agg.flush(T0 + hours * 3600 + 60))
    return store


def test_the_seeds_example_comes_out_as_the_seed_says(
        engine: Engine, ledger: Ledger, fleet: Fleet, clock: FakeClock, catalog: Catalog) -> None:
    # 16 vCPUs at 5 % each: SageMaker's CPUUtilization reads 80 %.
    fleet.run("shop", "AllTraffic", "ml.m5.4xlarge", T0, None)
    store = history(engine, clock, "shop", cpu=80.0, memory=10.0, invocations=3)
    clock.set(T0 + DAY)
    [u] = gather(store, ledger, catalog, T0, T0 + DAY)
    assert (u.cpu_p95, u.memory_max, u.running_hours) == (pytest.approx(5.0, rel=0.02), 10.0,
                                                          24.0)
    rec = recommend(u, catalog)
    assert rec is not None and rec.target is not None
    assert rec.kind == "MODIFY" and rec.target.instance_type == "ml.m5.large"
    assert rec.savings_percentage == pytest.approx(87.5, abs=0.05)
    assert rec.monthly_savings == pytest.approx((0.922 - 0.115) * 730)
    assert rec.reasons == ("CPU_OVER_PROVISIONED", "MEMORY_OVER_PROVISIONED")
    # The rule, projected: CPU 5 x 16/2 = 40 % <= 60; memory 10 x 64/8 = 80 % <= 85.
    assert rec.target.cpu_p95 == pytest.approx(40.0, rel=0.02)
    assert rec.target.memory_max == pytest.approx(80.0)


def variant(instance_type: str, cpu: float, memory: float, invocations: float = 100.0
            ) -> VariantUtilisation:
    return VariantUtilisation("ep", "AllTraffic", instance_type, 2, cpu, cpu, memory, None,
                              invocations, 48.0)


def test_saturated_variant_is_advised_to_a_larger_type(catalog: Catalog) -> None:
    # ml.m5.large at 90 % CPU: xlarge projects 45 % <= 60, so one size up, at a cost.
    rec = recommend(variant("ml.m5.large", 90.0, 30.0), catalog)
    assert rec is not None and rec.target is not None
    assert rec.target.instance_type == "ml.m5.xlarge"
    assert rec.monthly_savings == pytest.approx(-(0.230 - 0.115) * 2 * 730)
    assert rec.reasons == ("CPU_UNDER_PROVISIONED",)


def test_memory_keeps_a_type_that_cpu_alone_would_shrink(catalog: Catalog) -> None:
    # 5 % CPU but 50 % memory of 64 GiB = 32 GiB: only ml.m5.2xlarge (32 GiB) reads 100 %,
    # over 85 %, so ml.m5.4xlarge stays: no recommendation.
    assert recommend(variant("ml.m5.4xlarge", 5.0, 50.0), catalog) is None


def test_endpoint_without_invocations_is_a_zombie(catalog: Catalog) -> None:
    rec = recommend(variant("ml.m5.xlarge", 0.5, 5.0, invocations=0), catalog)
    assert rec is not None and rec.kind == "TERMINATE" and rec.target is None
    assert rec.monthly_savings == pytest.approx(0.230 * 2 * 730)


def test_unknown_instance_type_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValidationError, match="ml.bogus.large"):
        recommend(variant("ml.bogus.large", 5.0, 5.0), catalog)


def test_the_ce_operation_answers_in_its_shapes(
        engine: Engine, ledger: Ledger, fleet: Fleet, clock: FakeClock, catalog: Catalog) -> None:
    fleet.run("shop", "AllTraffic", "ml.m5.4xlarge", T0, None)
    store = history(engine, clock, "shop", cpu=80.0, memory=10.0, invocations=3)
    clock.set(T0 + DAY)
    api = Rightsizing(store, ledger, catalog, clock, "123456789012", "us-east-1",
                      lambda name: f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
                      lambda arn: {"team": "vision"})
    out = api.get_rightsizing_recommendation({"Service": "AmazonSageMaker"})
    [rec] = out["RightsizingRecommendations"]
    target = rec["ModifyRecommendationDetail"]["TargetInstances"][0]
    assert target["ResourceDetails"]["EC2ResourceDetails"]["InstanceType"] == "ml.m5.large"
    assert target["EstimatedMonthlySavings"] == "589.11"
    assert out["Summary"]["SavingsPercentage"] == "87.5271149675"
    assert rec["CurrentInstance"]["Tags"] == [{"Key": "team", "Values": ["vision"]}]
    by_tag = {"Service": "AmazonSageMaker",
              "Filter": {"Tags": {"Key": "team", "Values": ["web"]}}}
    assert api.get_rightsizing_recommendation(by_tag)["RightsizingRecommendations"] == []
    by_type = {"Service": "AmazonSageMaker",
               "Filter": {"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["ml.m5.4xlarge"]}}}
    assert len(api.get_rightsizing_recommendation(by_type)["RightsizingRecommendations"]) == 1
    assert api.get_rightsizing_recommendation({"Service": "AmazonEC2"})[
        "RightsizingRecommendations"] == []
    with pytest.raises(ValidationError, match="AmazonRDS"):
        api.get_rightsizing_recommendation({"Service": "AmazonRDS"})
