"""PutMetricAlarm validation (§5.8) and the DescribeAlarms view of an alarm."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.errors import ValidationError
from tideserve.scaling.alarms import (
    AlarmState,
    alarm_arn,
    describe,
    is_autoscaling_action,
    new_alarm_state,
)

POLICY = (
    "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1a2b3c4d-0000-4000-8000-"
    "000000000001:resource/sagemaker/endpoint/ep/variant/AllTraffic:policyName/step"
)
SNS = "arn:aws:sns:us-east-1:123456789012:ops"


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "AlarmName": "high-latency",
        "Namespace": "AWS/SageMaker",
        "MetricName": "ModelLatency",
        "Dimensions": [
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointName", "Value": "ep"},
        ],
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "Threshold": 250_000,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def test_defaults_and_normalisation() -> None:
    alarm = validate_alarm(params(AlarmActions=[POLICY, SNS, POLICY]))
    assert alarm.dimensions == (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
    assert alarm.datapoints_to_alarm == 3  # M defaults to N
    assert alarm.threshold == 250_000.0 and isinstance(alarm.threshold, float)
    assert alarm.treat_missing_data == "missing"
    assert alarm.evaluate_low_sample_count_percentile == "evaluate"
    assert alarm.actions_enabled is True
    assert alarm.alarm_actions == (POLICY, SNS)  # one of each
    assert alarm.configuration_updated_at is None


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"Period": 10}, id="high-resolution 10 s"),
        pytest.param({"Period": 20}, id="high-resolution 20 s"),
        pytest.param({"Period": 30, "EvaluationPeriods": 2880}, id="30 s x 2880 = exactly 1 day"),
        pytest.param({"Period": 3600, "EvaluationPeriods": 168}, id="1 h x 168 = exactly 7 days"),
        pytest.param({"Period": 86400, "EvaluationPeriods": 7}, id="1 day x 7"),
        pytest.param({"DatapointsToAlarm": 3}, id="M = N"),
        pytest.param({"Statistic": None, "ExtendedStatistic": "p99.9"}, id="percentile"),
        pytest.param({"Statistic": None, "ExtendedStatistic": "TM(10%:90%)"}, id="trimmed mean"),
        pytest.param({"Statistic": None, "ExtendedStatistic": "PR(100:2000)"}, id="rank"),
        pytest.param({"Statistic": None, "ExtendedStatistic": "IQM"}, id="IQM"),
        pytest.param({"Period": "60", "EvaluationPeriods": "3", "Threshold": "1.5"}, id="query"),
        pytest.param({"Unit": "Microseconds", "Tags": [{"Key": "team", "Value": ""}]}, id="unit"),
    ],
)
def test_accepts(overrides: dict[str, Any]) -> None:
    validate_alarm(params(**overrides))


@pytest.mark.parametrize(
    ("overrides", "code", "mentions"),
    [
        pytest.param({"AlarmName": None}, "MissingParameter", "AlarmName", id="no AlarmName"),
        pytest.param({"AlarmName": "x" * 256}, "InvalidParameterValue", "AlarmName", id="name 256"),
        pytest.param({"AlarmName": "alarme-é"}, "InvalidParameterValue", "ASCII", id="non-ASCII"),
        pytest.param({"Namespace": None}, "MissingParameter", "Namespace", id="no Namespace"),
        pytest.param({"Namespace": ":x"}, "InvalidParameterValue", "Namespace", id="ns ':'"),
        pytest.param({"MetricName": None}, "MissingParameter", "MetricName", id="no MetricName"),
        pytest.param({"Period": None}, "MissingParameter", "Period", id="no Period"),
        pytest.param({"Period": 45}, "InvalidParameterValue", "Period", id="Period 45"),
        pytest.param({"Period": 90}, "InvalidParameterValue", "Period", id="Period 90"),
        pytest.param({"Period": 0}, "InvalidParameterValue", "Period", id="Period 0"),
        pytest.param({"Period": True}, "InvalidParameterValue", "Period", id="Period bool"),
        pytest.param(
            {"Period": 60, "EvaluationPeriods": 1441},
            "InvalidParameterCombination",
            "86400",
            id="60 s x 1441 > 1 day",
        ),
        pytest.param(
            {"Period": 30, "EvaluationPeriods": 2881},
            "InvalidParameterCombination",
            "86400",
            id="30 s x 2881 > 1 day",
        ),
        pytest.param(
            {"Period": 3600, "EvaluationPeriods": 169},
            "InvalidParameterCombination",
            "604800",
            id="1 h x 169 > 7 days",
        ),
        pytest.param({"EvaluationPeriods": None}, "MissingParameter", "EvaluationPeriods", id="N"),
        pytest.param(
            {"EvaluationPeriods": 0}, "InvalidParameterValue", "EvaluationPeriods", id="0"
        ),
        pytest.param(
            {"DatapointsToAlarm": 4},
            "InvalidParameterCombination",
            "DatapointsToAlarm",
            id="M > N",
        ),
        pytest.param({"DatapointsToAlarm": 0}, "InvalidParameterValue", "Datapoints", id="M 0"),
        pytest.param({"Threshold": None}, "MissingParameter", "Threshold", id="no Threshold"),
        pytest.param({"Threshold": "abc"}, "InvalidParameterValue", "Threshold", id="text"),
        pytest.param({"Threshold": float("nan")}, "InvalidParameterValue", "Threshold", id="NaN"),
        pytest.param(
            {"ExtendedStatistic": "p99"},
            "InvalidParameterCombination",
            "Exactly one",
            id="Statistic and ExtendedStatistic",
        ),
        pytest.param(
            {"Statistic": None}, "InvalidParameterCombination", "Exactly one", id="no statistic"
        ),
        pytest.param({"Statistic": "Median"}, "InvalidParameterValue", "Statistic", id="Median"),
        pytest.param(
            {"Statistic": None, "ExtendedStatistic": "p101"},
            "InvalidParameterValue",
            "ExtendedStatistic",
            id="p101",
        ),
        pytest.param(
            {"Statistic": None, "ExtendedStatistic": "TM(5%:90%)"},
            "InvalidParameterValue",
            "ExtendedStatistic",
            id="TM bound under 10%",
        ),
        pytest.param(
            {"ComparisonOperator": None}, "MissingParameter", "ComparisonOperator", id="no op"
        ),
        pytest.param(
            {"ComparisonOperator": "GreaterThan"},
            "InvalidParameterValue",
            "ComparisonOperator",
            id="bad operator",
        ),
        pytest.param(
            {"ComparisonOperator": "GreaterThanUpperThreshold"},
            "InvalidParameterCombination",
            "ThresholdMetricId",
            id="band operator",
        ),
        pytest.param(
            {"TreatMissingData": "zero"}, "InvalidParameterValue", "TreatMissingData", id="tmd"
        ),
        pytest.param(
            {"EvaluateLowSampleCountPercentile": "skip"},
            "InvalidParameterValue",
            "EvaluateLowSampleCountPercentile",
            id="low sample",
        ),
        pytest.param({"Unit": "Hours"}, "InvalidParameterValue", "Unit", id="unit"),
        pytest.param(
            {"AlarmActions": [SNS] * 6}, "InvalidParameterValue", "AlarmActions", id="6 actions"
        ),
        pytest.param({"OKActions": ["sns:x"]}, "InvalidParameterValue", "OKActions", id="not ARN"),
        pytest.param(
            {"Dimensions": [{"Name": "A", "Value": "1"}, {"Name": "A", "Value": "2"}]},
            "InvalidParameterValue",
            "Dimensions",
            id="duplicate dimension",
        ),
        pytest.param(
            {"Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]},
            "InvalidParameterValue",
            "Dimensions",
            id="31 dimensions",
        ),
        pytest.param(
            {"Dimensions": [{"Name": "A"}]}, "MissingParameter", "Value", id="dimension no value"
        ),
        pytest.param(
            {"Tags": [{"Key": "k", "Value": "v"}] * 51}, "InvalidParameterValue", "Tags", id="tags"
        ),
        pytest.param(
            {"Metrics": [{"Id": "m1"}]}, "InvalidParameterCombination", "Metrics", id="math+name"
        ),
        pytest.param(
            {"ThresholdMetricId": "ad1"},
            "InvalidParameterValue",
            "ThresholdMetricId",
            id="anomaly band",
        ),
        pytest.param(
            {"AlarmDescription": "d" * 1025},
            "InvalidParameterValue",
            "AlarmDescription",
            id="description",
        ),
        pytest.param(
            {"ActionsEnabled": "yes"}, "InvalidParameterValue", "ActionsEnabled", id="enabled"
        ),
    ],
)
def test_rejects(overrides: dict[str, Any], code: str, mentions: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate_alarm(params(**overrides))
    assert err.value.code == code
    assert mentions in err.value.message


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (POLICY, True),
        (POLICY + ":createdBy/5f6e7d8c-0000-4000-8000-000000000002", True),
        ("arn:aws-cn:autoscaling:cn-north-1:123456789012:scalingPolicy:x:resource/y", True),
        (SNS, False),
        ("arn:aws:lambda:us-east-1:123456789012:function:f", False),
        ("arn:aws:automate:us-east-1:ec2:stop", False),
    ],
)
def test_is_autoscaling_action(arn: str, expected: bool) -> None:
    assert is_autoscaling_action(arn) is expected


def test_new_alarm_state() -> None:
    assert new_alarm_state(42.0) == AlarmState(
        "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", "", 42.0
    )


def test_describe_matches_the_botocore_metric_alarm_shape() -> None:
    alarm = validate_alarm(
        params(
            AlarmDescription="p50 latency",
            AlarmActions=[POLICY],
            OKActions=[SNS],
            Unit="Microseconds",
            Statistic=None,
            ExtendedStatistic="p50",
            DatapointsToAlarm=2,
        ),
        now=1_700_000_000.0,
    )
    state = AlarmState("ALARM", "Threshold Crossed: ...", '{"version":"1.0"}', 1_700_000_060.0)
    out = describe(alarm, state, "eu-west-1", "111122223333")
    model = botocore.session.get_session().get_service_model("cloudwatch")
    report = ParamValidator().validate(out, model.shape_for("MetricAlarm"))
    assert not report.has_errors(), report.generate_report()
    assert out["AlarmArn"] == alarm_arn("eu-west-1", "111122223333", "high-latency")
    assert out["AlarmArn"] == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:high-latency"
    assert out["StateUpdatedTimestamp"] == datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)
    assert out["AlarmConfigurationUpdatedTimestamp"].tzinfo is UTC
    assert out["Dimensions"] == [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert "Statistic" not in out and out["ExtendedStatistic"] == "p50"
    assert (out["Period"], out["EvaluationPeriods"], out["DatapointsToAlarm"]) == (60, 3, 2)
    assert out["Threshold"] == 250000.0 and out["TreatMissingData"] == "missing"
    assert out["AlarmActions"] == [POLICY] and out["InsufficientDataActions"] == []
