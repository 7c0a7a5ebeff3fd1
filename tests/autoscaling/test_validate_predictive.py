"""PredictiveScalingPolicyConfiguration as AWS shapes it: what is accepted, and the errors
(field, value, rule) for what is not."""

from __future__ import annotations

import json

import pytest

from tideserve.autoscaling.validate_predictive import predictive_config
from tideserve.errors import ValidationError
from tideserve.scaling.model import TargetKey
from tideserve.scaling.predictive_model import ExpressionQuery, MetricStatQuery

KEY = TargetKey("sagemaker", "endpoint/ep/variant/AllTraffic",
                "sagemaker:variant:DesiredInstanceCount")
PAIR = {"PredefinedMetricPairSpecification": {
    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
STAT = {"Metric": {"Namespace": "Custom/App", "MetricName": "Requests",
                   "Dimensions": [{"Name": "Service", "Value": "web"}]}, "Stat": "Sum"}


def config(spec=None, **extra):
    return {"MetricSpecifications": [{"TargetValue": 50.0, **(spec or PAIR)}], **extra}


def custom(queries):
    return {"CustomizedLoadMetricSpecification": {"MetricDataQueries": queries},
            "PredefinedScalingMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}


def test_the_predefined_pair_reads_the_variants_invocations_and_defaults_as_aws():
    c = predictive_config(config(), KEY)
    assert (c.mode, c.scheduling_buffer_time, c.max_capacity_breach_behavior) == (
        "ForecastOnly", 300, "HonorMaxCapacity")
    assert c.spec.load_query == MetricStatQuery(
        "load", "AWS/SageMaker", "Invocations", "Sum",
        (("EndpointName", "ep"), ("VariantName", "AllTraffic")))
    assert json.loads(c.spec.echo) == {"TargetValue": 50.0, **PAIR}


def test_a_customized_load_with_metric_math():
    queries = [{"Id": "a", "MetricStat": STAT, "ReturnData": False},
               {"Id": "total", "Expression": "a * 2"}]
    c = predictive_config(config(custom(queries)), KEY)
    assert c.spec.load_query == ExpressionQuery("total", "a * 2")


@pytest.mark.parametrize("raw, message", [
    ({}, "Value 'None' at 'predictiveScalingPolicyConfiguration.metricSpecifications' failed "
         "to satisfy constraint: Member must not be null"),
    ({"MetricSpecifications": [{"TargetValue": 1.0, **PAIR}] * 2}, "length less than or equal"),
    (config(SchedulingBufferTime=3601), "Value '3601' at 'predictiveScalingPolicyConfiguration"
     ".schedulingBufferTime' failed to satisfy constraint: Member must have value less than or "
     "equal to 3600"),
    (config(MaxCapacityBuffer=10), "only valid when MaxCapacityBreachBehavior is "
     "IncreaseMaxCapacity"),
    (config(MaxCapacityBreachBehavior="IncreaseMaxCapacity", MaxCapacityBuffer=101),
     "less than or equal to 100"),
    (config(Mode="Scale"), "enum value set: [ForecastOnly, ForecastAndScale]"),
    (config({"TargetValue": 0, **PAIR}), "TargetValue (0) must be a number greater than 0"),
    (config({**PAIR, **custom([{"Id": "a", "MetricStat": STAT}])}), "Specify either"),
    (config({"PredefinedMetricPairSpecification": {"PredefinedMetricType": "ECSServiceCPU"}}),
     "Member must satisfy enum value set: [SageMakerVariantInvocationsPerInstance]"),
    (config(custom([{"Id": "a", "MetricStat": STAT, "ReturnData": False}])),
     "Exactly one MetricDataQuery must return data"),
    (config(custom([{"Id": "a", "MetricStat": STAT}, {"Id": "b", "Expression": "a"}])),
     "2 do"),
    (config(custom([{"Id": "A", "MetricStat": STAT}])), "starts with a lowercase letter"),
    (config(custom([{"Id": "a", "MetricStat": STAT, "Expression": "a"}])),
     "Exactly one of Expression and MetricStat"),
], ids=["no metric specification", "two specifications", "buffer above 3600",
        "buffer without increase", "max buffer above 100", "unknown mode", "zero target",
        "pair and load", "unknown predefined type", "no query returns data",
        "two queries return data", "id not lowercase", "expression and stat"])
def test_refusals(raw, message):
    with pytest.raises(ValidationError) as err:
        predictive_config(raw, KEY)
    assert message in err.value.message
