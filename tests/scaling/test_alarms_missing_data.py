"""The CloudWatch missing-data tables (§5.8, §8 item 9), row by row, for every TreatMissingData.

Each pattern is the evaluation range, oldest period on the left: `0` a datapoint within the
threshold, `X` a breaching one, `-` no datapoint. The threshold is 70 (GreaterThanThreshold),
so `0` is 10.0 and `X` is 90.0. "retain" means the alarm keeps whatever state it was in.
"""

from __future__ import annotations

import pytest

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.scaling.alarms import AlarmState, MetricAlarm, evaluate, evaluation_range

PERIOD = 60
NOW = 1_700_000_040.0 + 5.0  # 5 s into a period; the last complete one starts 60 s earlier
VALUES = {"0": 10.0, "X": 90.0}


def make_alarm(n: int, m: int, treat: str, **extra: object) -> MetricAlarm:
    params: dict[str, object] = {
        "AlarmName": f"table-{n}-{m}-{treat}",
        "Namespace": "AWS/SageMaker",
        "MetricName": "InvocationsPerInstance",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
        "Statistic": "Sum",
        "Period": PERIOD,
        "EvaluationPeriods": n,
        "DatapointsToAlarm": m,
        "Threshold": 70.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": treat,
    }
    params.update(extra)
    return validate_alarm(params)


def datapoints(pattern: str, now: float = NOW, period: float = PERIOD) -> dict[float, float]:
    """The pattern's points, the last symbol being the last complete period before `now`."""
    symbols = pattern.split()
    last_start = (now // period - 1) * period
    points = {}
    for age, symbol in enumerate(reversed(symbols)):
        if symbol != "-":
            points[last_start - age * period] = VALUES[symbol]
    return points


def state(value: str) -> AlarmState:
    return AlarmState(value, "before", "", 0.0)  # type: ignore[arg-type]


TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")

# (N, M, pattern, outcome per TREATMENTS order, why)
TABLE = [
    # AWS's first table: N=3, M=3, evaluation range 5.
    (3, 3, "0 - X - X", ("OK", "OK", "OK", "OK"), "3 real points: decide on them, 2 of 3 breach"),
    (3, 3, "0 - - - -", ("OK", "OK", "OK", "OK"), "one good point plus 2 fills cannot reach 3"),
    (
        3,
        3,
        "- - - - -",
        ("INSUFFICIENT_DATA", "retain", "ALARM", "OK"),
        "nothing at all: only the fill rule decides",
    ),
    (3, 3, "0 X X - X", ("ALARM",) * 4, "4 real points: the 3 most recent all breach"),
    (
        3,
        3,
        "- - X - -",
        ("ALARM", "retain", "ALARM", "OK"),
        "premature-alarm guard: X has been breaching for 3 >= M periods",
    ),
    # AWS's second table: N=3, M=2.
    (3, 2, "0 - X - -", ("OK", "OK", "ALARM", "OK"), "a real good point outweighs the guard"),
    (3, 2, "- - - - 0", ("OK", "OK", "ALARM", "OK"), "a lone good point is OK unless filled bad"),
    (
        3,
        2,
        "- - - X -",
        ("ALARM", "retain", "ALARM", "OK"),
        "premature-alarm guard: X breaching for 2 >= M periods",
    ),
    (3, 2, "0 - X - X", ("ALARM",) * 4, "3 real points, 2 breach"),
    (3, 2, "0 0 X 0 X", ("ALARM",) * 4, "no missing data: last 3 are X 0 X"),
    # Rows from earlier editions of the same AWS page, and the guard's other side (§5.8 item 5).
    (
        3,
        3,
        "- - - - X",
        ("INSUFFICIENT_DATA", "retain", "ALARM", "OK"),
        "guard holds: a fresh lone X does not alarm yet",
    ),
    (
        3,
        3,
        "- - - X -",
        ("INSUFFICIENT_DATA", "retain", "ALARM", "OK"),
        "guard holds: X only 2 periods old, M=3",
    ),
    (
        3,
        3,
        "X - - - -",
        ("ALARM", "retain", "ALARM", "OK"),
        "oldest point breaching and nothing good since: ALARM even though missing",
    ),
    (
        3,
        2,
        "- - - - X",
        ("INSUFFICIENT_DATA", "retain", "ALARM", "OK"),
        "guard holds for M=2 too",
    ),
]


def _cases() -> list[object]:
    cases = []
    for n, m, pattern, outcomes, why in TABLE:
        for treat, outcome in zip(TREATMENTS, outcomes, strict=True):
            name = f"N={n} M={m} `{pattern}` {treat} -> {outcome} ({why})"
            cases.append(pytest.param(n, m, pattern, treat, outcome, id=name))
    return cases


@pytest.mark.parametrize(("n", "m", "pattern", "treat", "outcome"), _cases())
def test_missing_data_table(n: int, m: int, pattern: str, treat: str, outcome: str) -> None:
    alarm = make_alarm(n, m, treat)
    assert evaluation_range(alarm) == 5
    points = datapoints(pattern)
    if outcome == "retain":
        for before in ("OK", "ALARM", "INSUFFICIENT_DATA"):
            result = evaluate(alarm, state(before), points, NOW)
            assert result.state.value == before
            assert not result.transitioned
        return
    # Start from a different state so that reaching `outcome` is a transition.
    before = "OK" if outcome != "OK" else "ALARM"
    result = evaluate(alarm, state(before), points, NOW)
    assert result.state.value == outcome
    assert result.transitioned
    assert result.state.updated_at == NOW


def test_breaching_fills_only_the_most_recent_missing_slots() -> None:
    """`0 - - - -` with breaching: the one real point plus the 2 newest slots filled bad."""
    alarm = make_alarm(3, 3, "breaching")
    result = evaluate(alarm, state("INSUFFICIENT_DATA"), datapoints("0 - - - -"), NOW)
    last = (NOW // PERIOD - 1) * PERIOD
    assert result.evaluated == ((last - 240, 10.0), (last - 60, None), (last, None))
    assert result.state.value == "OK"
    # One period later the good point has left the range: 3 fills, all breaching -> ALARM.
    later = evaluate(alarm, result.state, datapoints("0 - - - -"), NOW + PERIOD)
    assert later.state.value == "ALARM"


def test_enough_real_points_decide_on_the_most_recent_real_ones() -> None:
    alarm = make_alarm(3, 3, "notBreaching")
    result = evaluate(alarm, state("OK"), datapoints("0 X X - X"), NOW)
    assert [v for _, v in result.evaluated] == [90.0, 90.0, 90.0]
    assert result.state.value == "ALARM"


def test_dynamodb_alarms_always_ignore_missing_data() -> None:
    alarm = make_alarm(3, 3, "breaching", Namespace="AWS/DynamoDB")
    result = evaluate(alarm, state("OK"), {}, NOW)
    assert result.state.value == "OK" and not result.transitioned


def test_low_sample_percentile_ignored_keeps_state_until_enough_samples() -> None:
    """p99 needs 10 / (1 - 0.99) = 1000 samples over the N periods before it is trusted."""
    alarm = make_alarm(
        3, 3, "missing", Statistic=None, ExtendedStatistic="p99",
        EvaluateLowSampleCountPercentile="ignore",
    )  # fmt: skip
    points = datapoints("X X X X X")
    few = {start: 100.0 for start in points}
    assert evaluate(alarm, state("OK"), points, NOW, sample_counts=few).state.value == "OK"
    many = {start: 400.0 for start in points}
    assert evaluate(alarm, state("OK"), points, NOW, sample_counts=many).state.value == "ALARM"
    evaluated = make_alarm(3, 3, "missing", Statistic=None, ExtendedStatistic="p99")
    assert evaluate(evaluated, state("OK"), points, NOW, sample_counts=few).state.value == "ALARM"
