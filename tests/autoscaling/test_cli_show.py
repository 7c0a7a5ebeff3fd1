"""`tideserve scaling show` prints a predictive policy's mode, target and buffer, and the
target's PredictedCapacity (the Application Auto Scaling answers given as boto3 returns
them)."""

from __future__ import annotations

import argparse

from tideserve.autoscaling.cli import _do_show


class Answers:
    def describe_scalable_targets(self, **_):
        return {"ScalableTargets": [{"ResourceId": "endpoint/ep/variant/AllTraffic",
                                     "MinCapacity": 1, "MaxCapacity": 4,
                                     "PredictedCapacity": 3}]}

    def describe_scaling_policies(self, **_):
        return {"ScalingPolicies": [{
            "PolicyName": "forecast", "PolicyType": "PredictiveScaling",
            "PredictiveScalingPolicyConfiguration": {
                "MetricSpecifications": [{"TargetValue": 500.0}], "Mode": "ForecastAndScale",
                "SchedulingBufferTime": 300}}]}

    def describe_scheduled_actions(self, **_):
        return {"ScheduledActions": []}


def test_show_prints_the_predictive_policy(capsys):
    args = argparse.Namespace(endpoint="ep", variant="AllTraffic", serverless=False)
    assert _do_show(Answers(), args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["endpoint/ep/variant/AllTraffic: min 1, max 4, predicted 3",
                   "  policy forecast (PredictiveScaling, ForecastAndScale) target 500.0, "
                   "buffer 300 s"]
