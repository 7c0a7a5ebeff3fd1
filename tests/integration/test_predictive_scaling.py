"""Predictive scaling on a live endpoint through boto3, on the shared server (metric period
2 s: an AWS day is 2,880 s, an hour 120 s, SchedulingBufferTime 300 s is 10 s).

Two days of a periodic load are written with PutMetricData (old timestamps, as CloudWatch
allows up to two weeks back) before the policy is put: a quiet 5 per period, and 150 per
period for 400 s of each day, the next rise 14 s after the policy is put. The predictive policy
scales out ahead of it; the target-tracking alarm on the same metric only goes to ALARM after
the load has arrived."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_autoscaling import register, variant, wait_for
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer

pytestmark = pytest.mark.integration

PERIOD, DAY = 2.0, 2880.0
DIM = "sagemaker:variant:DesiredInstanceCount"
METRIC = {"Namespace": "Custom/Predict", "MetricName": "Load",
          "Dimensions": [{"Name": "Endpoint", "Value": "tidecast"}]}


def load_at(t: float, rise: float) -> float:
    return 150.0 if (t - rise) % DAY < 400 else 5.0


def put_load(cw, stamps: list[float], rise: float) -> None:
    for i in range(0, len(stamps), 1000):
        cw.put_metric_data(Namespace=METRIC["Namespace"], MetricData=[
            {"MetricName": "Load", "Dimensions": METRIC["Dimensions"],
             "Timestamp": datetime.fromtimestamp(t, UTC), "Value": load_at(t, rise)}
            for t in stamps[i:i + 1000]])


def predictive_config(**extra) -> dict:
    query = {"Id": "load", "MetricStat": {"Metric": METRIC, "Stat": "Sum"}}
    return {
        "MetricSpecifications": [{
            "TargetValue": 100.0,
            "CustomizedLoadMetricSpecification": {"MetricDataQueries": [query]},
            "CustomizedScalingMetricSpecification": {"MetricDataQueries": [
                {**query, "MetricStat": {"Metric": METRIC, "Stat": "Average"}}]},
        }],
        "Mode": "ForecastAndScale", "SchedulingBufferTime": 300, **extra,
    }


def test_predictive_policy_scales_out_before_the_load_and_ahead_of_the_alarm(
    server: RunningServer, trained
):
    _, _, archive, _ = trained
    sm, aas, cw = (server.client(s) for s in ("sagemaker", "application-autoscaling",
                                              "cloudwatch"))
    deploy(sm, "tidecast", str(archive), count=1)
    wait_in_service(sm, "tidecast")
    resource = register(aas, "tidecast", 1, 2)
    start = time.time()
    now_bin = (start // PERIOD) * PERIOD
    rise = now_bin + 14.0
    put_load(cw, [now_bin - i * PERIOD for i in range(int(2 * DAY / PERIOD), -1, -1)], rise)
    target = {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIM}
    aas.put_scaling_policy(PolicyName="forecast", PolicyType="PredictiveScaling", **target,
                           PredictiveScalingPolicyConfiguration=predictive_config())
    tt = aas.put_scaling_policy(
        PolicyName="reactive", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0, "CustomizedMetricSpecification": {**METRIC, "Statistic": "Sum"}})
    high = next(a["AlarmName"] for a in tt["Alarms"] if "AlarmHigh" in a["AlarmName"])

    described = aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                              PolicyNames=["forecast"])["ScalingPolicies"][0]
    assert described["PolicyType"] == "PredictiveScaling"
    assert described["PredictiveScalingPolicyConfiguration"]["Mode"] == "ForecastAndScale"

    # The live load: one datapoint for each period as it begins, until the alarm fires.
    written = {now_bin}

    def alarm_fired() -> bool:
        current = (time.time() // PERIOD) * PERIOD
        if current not in written:
            written.add(current)
            put_load(cw, [current], rise)
        state = cw.describe_alarms(AlarmNames=[high])["MetricAlarms"][0]["StateValue"]
        return state == "ALARM"

    wait_for(lambda: variant(sm, "tidecast")["DesiredInstanceCount"] == 2 or alarm_fired(),
             40, "the predictive scale-out")
    scaled_at = time.time()
    assert scaled_at < rise, f"scaled {scaled_at - rise:.1f} s after the rise"
    # The forecast it acted on (remade every 120 s, so read now, while it still covers the
    # rise): 2 instances from the rise, 1 before it (the fit may put the edge a period early).
    forecast = aas.get_predictive_scaling_forecast(
        **target, PolicyName="forecast", StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(start, UTC) + timedelta(seconds=120))
    stamps = [t.timestamp() for t in forecast["CapacityForecast"]["Timestamps"]]
    values = dict(zip(stamps, forecast["CapacityForecast"]["Values"], strict=True))
    assert values[rise] == 2.0 and values[rise + 100] == 2.0
    early = [v for t, v in values.items() if t < rise - PERIOD]
    assert early and early == [1.0] * len(early)
    assert len(forecast["LoadForecast"][0]["Values"]) == len(stamps)
    assert forecast["LoadForecast"][0]["MetricSpecification"]["TargetValue"] == 100.0
    assert forecast["UpdateTime"].timestamp() < scaled_at

    wait_for(alarm_fired, 30, "the reactive alarm")
    alarm_at = cw.describe_alarms(AlarmNames=[high])["MetricAlarms"][0][
        "StateUpdatedTimestamp"].timestamp()
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                 ResourceId=resource)["ScalingActivities"]
    predicted = [a for a in activities if a["Cause"].startswith("predictive scaling policy")]
    assert predicted, activities
    assert predicted[-1]["Cause"] == "predictive scaling policy forecast forecasted capacity 2"
    assert predicted[-1]["StartTime"].timestamp() < rise < alarm_at

    scalable = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                             ResourceIds=[resource])["ScalableTargets"][0]
    assert scalable["PredictedCapacity"] == 2


@pytest.mark.parametrize("change, message", [
    (lambda c: {**c, "MetricSpecifications": []}, "metricSpecifications"),
    (lambda c: {**c, "SchedulingBufferTime": 3601},
     "Member must have value less than or equal to 3600"),
    (lambda c: {**c, "MetricSpecifications": [{
        **c["MetricSpecifications"][0],
        "CustomizedLoadMetricSpecification": {"MetricDataQueries": [
            {"Id": "load", "MetricStat": {"Metric": METRIC, "Stat": "Sum"},
             "ReturnData": False}]}}]},
     "Exactly one MetricDataQuery must return data"),
], ids=["no metric specification", "buffer above 3600", "custom query returns nothing"])
def test_invalid_predictive_configurations_get_aws_validation_errors(
    server: RunningServer, change, message
):
    """The configuration is checked before the target is looked up, as AWS validates the
    request first."""
    aas = server.client("application-autoscaling")
    resource = "endpoint/tidecheck/variant/AllTraffic"
    with pytest.raises(aas.exceptions.ValidationException, match=message):
        aas.put_scaling_policy(
            PolicyName="bad", PolicyType="PredictiveScaling", ServiceNamespace="sagemaker",
            ResourceId=resource, ScalableDimension=DIM,
            PredictiveScalingPolicyConfiguration=change(predictive_config()))
