"""Alarm evaluation over time: transitions, actions, reasons, the evaluation window, compressed
periods and SetAlarmState (§5.8, §1.3.2)."""

from __future__ import annotations

import json

import pytest

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.clock import FakeClock
from tideserve.errors import ValidationError
from tideserve.scaling.alarms import (
    AlarmState,
    MetricAlarm,
    evaluate,
    evaluation_interval,
    evaluation_range,
    new_alarm_state,
    set_alarm_state,
)

START = 1_700_000_040.0  # a minute boundary: 2023-11-14 22:14:00 UTC
POLICY = (
    "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1a2b3c4d-0000-4000-8000-"
    "000000000001:resource/sagemaker/endpoint/ep/variant/AllTraffic:policyName/tt"
)
TT_ACTION = POLICY + ":createdBy/5f6e7d8c-0000-4000-8000-000000000002"
SNS = "arn:aws:sns:us-east-1:123456789012:ops"


def tt_alarm(kind: str, target: float = 70.0, **extra: object) -> MetricAlarm:
    """The alarms target tracking creates for SageMakerVariantInvocationsPerInstance (§1.3.2)."""
    high = kind == "high"
    params: dict[str, object] = {
        "AlarmName": "TargetTracking-endpoint/ep/variant/AllTraffic-"
        f"Alarm{'High' if high else 'Low'}-5f6e7d8c-0000-4000-8000-000000000003",
        "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {TT_ACTION}.",
        "AlarmActions": [TT_ACTION],
        "Namespace": "AWS/SageMaker",
        "MetricName": "InvocationsPerInstance",
        "Dimensions": [
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointName", "Value": "ep"},
        ],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 3 if high else 15,
        "Threshold": target if high else 0.9 * target,
        "ComparisonOperator": "GreaterThanThreshold" if high else "LessThanThreshold",
        "TreatMissingData": "missing",
    }
    params.update(extra)
    return validate_alarm(params, now=START)


class Metric:
    """Per-minute values as the metrics store would hand them to the evaluator."""

    def __init__(self, period: float = 60.0) -> None:
        self.period = period
        self.points: dict[float, float] = {}

    def record(self, clock: FakeClock, value: float) -> None:
        """`value` for the period that is in progress at clock.now()."""
        self.points[(clock.now() // self.period) * self.period] = value


def test_target_tracking_alarms_take_the_shape_of_section_1_3_2() -> None:
    high, low = tt_alarm("high"), tt_alarm("low")
    assert (high.evaluation_periods, high.datapoints_to_alarm, high.threshold) == (3, 3, 70.0)
    assert (low.evaluation_periods, low.datapoints_to_alarm) == (15, 15)
    assert low.threshold == pytest.approx(63.0)
    assert high.dimensions == (("EndpointName", "ep"), ("VariantName", "AllTraffic"))
    assert evaluation_range(high) == 5 and evaluation_range(low) == 17


def test_alarm_high_story_policy_runs_every_tick_while_in_alarm_sns_only_on_transitions() -> None:
    clock = FakeClock(START)
    alarm = tt_alarm("high", AlarmActions=[TT_ACTION, SNS], OKActions=[SNS])
    metric = Metric()
    state = new_alarm_state(clock.now())

    def tick(value: float) -> tuple[str, tuple[str, ...]]:
        nonlocal state
        metric.record(clock, value)
        clock.advance(60)  # the minute completes; CloudWatch evaluates once a minute
        result = evaluate(alarm, state, metric.points, clock.now())
        state = result.state
        return state.value, result.actions

    # 08:00-08:01: 50 invocations per instance, under the target of 70.
    assert tick(50) == ("OK", (SNS,))  # INSUFFICIENT_DATA -> OK: OKActions run
    # One breaching minute, then a second: not yet 3 of 3.
    assert tick(75) == ("OK", ())
    assert tick(80) == ("OK", ())
    # The third breaching minute: ALARM, and every alarm action runs.
    assert tick(90) == ("ALARM", (TT_ACTION, SNS))
    # Still breaching: no new SNS message, but the scaling policy is invoked again.
    assert tick(95) == ("ALARM", (TT_ACTION,))
    assert tick(95) == ("ALARM", (TT_ACTION,))
    # Load falls: back to OK, OKActions run once.
    assert tick(40) == ("OK", (SNS,))
    assert tick(40) == ("OK", ())


def test_first_evaluation_from_insufficient_data_runs_ok_actions() -> None:
    alarm = tt_alarm("high", OKActions=[SNS])
    result = evaluate(alarm, new_alarm_state(START), {START - 60: 10.0}, START + 1)
    assert result.state.value == "OK" and result.transitioned and result.actions == (SNS,)


def test_disabled_actions_run_nothing_but_the_state_still_moves() -> None:
    alarm = tt_alarm("high", ActionsEnabled=False)
    points = {START - 60 * k: 100.0 for k in range(1, 4)}
    result = evaluate(alarm, new_alarm_state(START), points, START)
    assert result.state.value == "ALARM" and result.actions == ()


def test_only_complete_periods_count_and_a_boundary_closes_a_period() -> None:
    alarm = tt_alarm("high")
    points = {START - 120: 90.0, START - 60: 90.0, START: 90.0}  # START's period is in progress
    mid = evaluate(alarm, new_alarm_state(0), points, START + 59.9)
    assert [t for t, _ in mid.evaluated][-1] == START - 60
    assert mid.state.value == "INSUFFICIENT_DATA"  # 2 of 3 so far: the guard waits
    closed = evaluate(alarm, new_alarm_state(0), points, START + 60)
    assert closed.state.value == "ALARM"
    assert [t for t, _ in closed.evaluated] == [START - 120, START - 60, START]


def test_points_older_than_the_evaluation_range_are_not_used() -> None:
    alarm = tt_alarm("high")
    points = {START - 60 * k: 90.0 for k in range(6, 9)}  # three breaching, 6-8 periods ago
    result = evaluate(alarm, AlarmState("OK", "", "", 0.0), points, START)
    assert result.evaluated == ((START - 180, None), (START - 120, None), (START - 60, None))
    assert result.state.value == "INSUFFICIENT_DATA"
    assert result.latest_value is None


def test_compressed_period_evaluates_a_60s_alarm_over_2s_periods() -> None:
    """`--period 2`: Period=60 stays in the alarm (and in DescribeAlarms); the clock runs on 2 s."""
    clock = FakeClock(START)
    alarm = tt_alarm("high", AlarmActions=[TT_ACTION])
    metric = Metric(period=2.0)
    state = new_alarm_state(clock.now())
    seen = []
    for value in (50, 90, 90, 90):
        metric.record(clock, value)
        clock.advance(2.0)
        result = evaluate(alarm, state, metric.points, clock.now(), period=2.0)
        state = result.state
        seen.append(state.value)
    assert seen == ["OK", "OK", "OK", "ALARM"]
    assert [t for t, _ in result.evaluated] == [START + 2, START + 4, START + 6]
    assert json.loads(state.reason_data)["period"] == 60
    # The same points read with the alarm's own 60-s period are one period: not enough.
    assert evaluate(alarm, new_alarm_state(0), metric.points, clock.now()).state.value != "ALARM"


def test_latest_value_is_the_newest_real_point_in_the_range() -> None:
    """Step scaling uses latest_value - threshold; target tracking uses it as the metric."""
    alarm = tt_alarm("high")
    points = {START - 240: 90.0, START - 180: 91.0, START - 120: 92.0, START - 60: 10.0}
    result = evaluate(alarm, new_alarm_state(0), points, START + 1)
    assert result.latest_value == 10.0
    assert [v for _, v in result.evaluated] == [91.0, 92.0, 10.0]
    assert result.state.value == "OK"


def test_alarm_low_needs_15_consecutive_low_minutes() -> None:
    clock = FakeClock(START)
    alarm = tt_alarm("low")  # LessThanThreshold 63, 15 of 15
    metric = Metric()
    state = new_alarm_state(clock.now())
    for minute in range(1, 16):
        metric.record(clock, 20.0)
        clock.advance(60)
        state = evaluate(alarm, state, metric.points, clock.now()).state
        # Up to minute 14 the guard holds it back (too few points, none of them old enough).
        assert state.value == ("ALARM" if minute == 15 else "INSUFFICIENT_DATA"), minute


def test_state_reason_text_and_data_for_a_3_of_3_alarm() -> None:
    alarm = tt_alarm("high")
    points = {START - 180: 75.0, START - 120: 80.0, START - 60: 90.0}
    result = evaluate(alarm, new_alarm_state(0), points, START + 5.5)
    assert result.state.reason == (
        "Threshold Crossed: 3 datapoints [90.0 (14/11/23 22:13:00), 80.0 (14/11/23 22:12:00), "
        "75.0 (14/11/23 22:11:00)] were greater than the threshold (70.0)."
    )
    data = json.loads(result.state.reason_data)
    assert data == {
        "version": "1.0",
        "queryDate": "2023-11-14T22:14:05.500+0000",
        "startDate": "2023-11-14T22:11:00.000+0000",
        "statistic": "Sum",
        "period": 60,
        "recentDatapoints": [75.0, 80.0, 90.0],
        "threshold": 70.0,
        "evaluatedDatapoints": [
            {"timestamp": "2023-11-14T22:13:00.000+0000", "value": 90.0},
            {"timestamp": "2023-11-14T22:12:00.000+0000", "value": 80.0},
            {"timestamp": "2023-11-14T22:11:00.000+0000", "value": 75.0},
        ],
    }


def test_state_reason_for_m_of_n_filled_and_insufficient() -> None:
    m_of_n = tt_alarm("high", EvaluationPeriods=3, DatapointsToAlarm=2)
    points = {START - 180: 75.0, START - 120: 10.0, START - 60: 90.0}
    alarm_reason = evaluate(m_of_n, AlarmState("OK", "", "", 0.0), points, START).state.reason
    assert alarm_reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [90.0 (")
    assert alarm_reason.endswith(
        "were greater than the threshold (70.0) (minimum 2 datapoints for OK -> ALARM transition)."
    )

    filled = tt_alarm("high", TreatMissingData="breaching")
    reason = evaluate(filled, AlarmState("OK", "", "", 0.0), {}, START).state.reason
    assert reason == (
        "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints "
        "were treated as [Breaching]."
    )
    data = json.loads(evaluate(filled, AlarmState("OK", "", "", 0.0), {}, START).state.reason_data)
    assert data["evaluatedDatapoints"] == [
        {"timestamp": "2023-11-14T22:13:00.000+0000"},
        {"timestamp": "2023-11-14T22:12:00.000+0000"},
        {"timestamp": "2023-11-14T22:11:00.000+0000"},
    ]

    gone = evaluate(tt_alarm("high"), AlarmState("OK", "", "", 0.0), {}, START).state
    assert gone.value == "INSUFFICIENT_DATA"
    assert gone.reason == "Insufficient Data: 3 datapoints were unknown."


def test_unchanged_state_keeps_its_reason_and_time() -> None:
    alarm = tt_alarm("high")
    before = AlarmState("OK", "kept", "{}", 123.0)
    result = evaluate(alarm, before, {START - 60: 1.0, START - 120: 1.0, START - 180: 1.0}, START)
    assert result.state == before and not result.transitioned


def test_set_alarm_state_forces_a_state_until_the_next_evaluation() -> None:
    alarm = tt_alarm("high", AlarmActions=[TT_ACTION, SNS], OKActions=[SNS])
    ok = AlarmState("OK", "", "", 0.0)
    data = json.dumps({"evaluatedDatapoints": [{"timestamp": "t", "value": 140.0}]})
    forced = set_alarm_state(alarm, ok, "ALARM", "testing", data, START)
    assert forced.transitioned and forced.actions == (TT_ACTION, SNS)
    assert forced.state == AlarmState("ALARM", "testing", data, START)
    assert forced.latest_value == 140.0  # Auto Scaling reads the breaching value from the data
    # Setting the same state again invokes nothing.
    again = set_alarm_state(alarm, forced.state, "ALARM", "still", "", START + 1)
    assert not again.transitioned and again.actions == () and again.state.updated_at == START
    # The next evaluation puts the real state back.
    quiet = {START - 60 * k: 10.0 for k in range(1, 4)}
    back = evaluate(alarm, again.state, quiet, START + 60)
    assert back.state.value == "OK" and back.actions == (SNS,)


@pytest.mark.parametrize(
    ("value", "reason", "data", "code"),
    [
        pytest.param("BROKEN", "r", "", "InvalidParameterValue", id="unknown state value"),
        pytest.param("OK", "r", "{not json", "InvalidFormat", id="StateReasonData not JSON"),
        pytest.param("OK", "r", "[1, 2]", "InvalidFormat", id="StateReasonData not an object"),
        pytest.param("OK", "r" * 1024, "", "InvalidParameterValue", id="reason over 1023 chars"),
        pytest.param("OK", "r", "{}" + " " * 4000, "InvalidParameterValue", id="data over 4000"),
    ],
)
def test_set_alarm_state_rejects(value: str, reason: str, data: str, code: str) -> None:
    with pytest.raises(ValidationError) as err:
        set_alarm_state(tt_alarm("high"), new_alarm_state(0), value, reason, data, START)
    assert err.value.code == code


@pytest.mark.parametrize(("period", "interval"), [(10, 10), (30, 10), (60, 60), (300, 60)])
def test_evaluation_interval_every_minute_or_every_10s_for_high_resolution(
    period: int, interval: int
) -> None:
    assert evaluation_interval(tt_alarm("high", Period=period)) == interval


def test_period_starts_off_by_float_noise_still_land_in_their_period() -> None:
    """0.1-s periods: 3 × 0.1 is 0.30000000000000004, which must still key the 4th period."""
    alarm = tt_alarm("high")
    step = 0.1
    base = 17_000_000.0
    points = {base + k * step: 90.0 for k in range(3)}
    counts = {base + k * step: 1.0 for k in range(3)}
    result = evaluate(
        alarm, new_alarm_state(0), points, base + 3 * step, period=step, sample_counts=counts
    )
    assert result.state.value == "ALARM"
    data = json.loads(result.state.reason_data)
    assert [p["sampleCount"] for p in data["evaluatedDatapoints"]] == [1.0, 1.0, 1.0]
