"""Scheduled actions, read like spec §1.6 and §8 item 7."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.scaling.builders import (
    ACCOUNT,
    REGION,
    RESOURCE,
    T0,
    fire,
    make_target,
    new_id,
    tt_policy,
)
from tideserve.autoscaling.validate_schedule import (
    put_scheduled_action,
    validate_put_scheduled_action,
)
from tideserve.errors import ValidationError
from tideserve.scaling.engine import (
    TargetContext,
    TargetState,
    apply_scheduled_action,
    execute_policy,
)
from tideserve.scaling.model import ScheduledAction
from tideserve.scaling.schedule import due_scheduled_actions, next_fire_time, parse_schedule

NY = ZoneInfo("America/New_York")


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def action(schedule: str, created: float = T0, **fields: object) -> ScheduledAction:
    request = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
               "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
               "ScheduledActionName": "nightly", "Schedule": schedule, **fields}
    req = validate_put_scheduled_action(request)
    return put_scheduled_action(None, req, created, REGION, ACCOUNT, new_id)


def fires(a: ScheduledAction, after: float, count: int) -> list[datetime]:
    out, t = [], after
    for _ in range(count):
        nxt = next_fire_time(a, t)
        assert nxt is not None
        out.append(datetime.fromtimestamp(nxt, NY))
        t = nxt
    return out


def test_weekday_cron_in_new_york_stays_at_18_local_across_spring_dst() -> None:
    a = action("cron(0 18 ? * MON-FRI *)", Timezone="America/New_York")
    # Thursday 2024-03-07 → the US switches to EDT on Sunday 2024-03-10.
    got = fires(a, utc(2024, 3, 7, 0, 0), 4)
    assert [(d.month, d.day, d.hour, d.minute) for d in got] == [
        (3, 7, 18, 0), (3, 8, 18, 0), (3, 11, 18, 0), (3, 12, 18, 0)]
    # 18:00 EST is 23:00 UTC before the switch, 18:00 EDT is 22:00 UTC after it.
    assert [d.astimezone(UTC).hour for d in got] == [23, 23, 22, 22]


def test_cron_across_autumn_dst_and_in_the_spring_gap() -> None:
    a = action("cron(30 2 * * ? *)", Timezone="America/New_York")
    got = fires(a, utc(2024, 3, 9, 0, 0), 3)
    # 2024-03-10 02:30 does not exist in New York; it fires at 03:30 EDT (same wall reading
    # in the old offset), once.
    assert [(d.day, d.hour, d.minute) for d in got] == [(9, 2, 30), (10, 3, 30), (11, 2, 30)]
    b = action("cron(30 1 * * ? *)", Timezone="America/New_York")
    got = fires(b, utc(2024, 11, 2, 12, 0), 2)
    # 01:30 happens twice on 2024-11-03; it fires once, on the first (EDT) occurrence.
    assert [(d.day, d.hour, d.utcoffset()) for d in got] == [
        (3, 1, datetime(2024, 7, 1, tzinfo=NY).utcoffset()), (4, 1, got[1].utcoffset())]


def test_cron_special_fields() -> None:
    after = utc(2024, 1, 1, 0, 0)
    last_day = action("cron(0 0 L * ? *)")
    assert datetime.fromtimestamp(next_fire_time(last_day, after) or 0, UTC).day == 31
    third_friday = action("cron(0 12 ? * FRI#3 2024)")
    assert datetime.fromtimestamp(next_fire_time(third_friday, after) or 0, UTC).day == 19
    last_friday = action("cron(0 12 ? * 6L *)")
    assert datetime.fromtimestamp(next_fire_time(last_friday, after) or 0, UTC).day == 26
    nearest_weekday = action("cron(0 12 6W * ? *)")  # 2024-01-06 is a Saturday → Fri 5th
    assert datetime.fromtimestamp(next_fire_time(nearest_weekday, after) or 0, UTC).day == 5
    every_15 = action("cron(0/15 * * * ? *)")
    assert next_fire_time(every_15, after) == after + 15 * 60
    past_years = action("cron(0 0 * * ? 2020)")
    assert next_fire_time(past_years, after) is None


def test_rate_fires_at_start_time_then_every_interval() -> None:
    start = utc(2024, 5, 1, 12, 0)
    a = action("rate(6 hours)", StartTime=start)
    assert next_fire_time(a, start - 100) == start
    assert next_fire_time(a, start) == start + 6 * 3600
    assert next_fire_time(a, start + 7 * 3600) == start + 12 * 3600
    b = action("rate(1 day)", created=start)  # no StartTime: one interval after creation
    assert next_fire_time(b, start) == start + 86400


def test_at_fires_once_in_its_timezone() -> None:
    a = action("at(2024-07-04T09:00:00)", Timezone="America/New_York")
    t = next_fire_time(a, utc(2024, 7, 1))
    assert t == utc(2024, 7, 4, 13, 0)
    assert next_fire_time(a, t or 0) is None


def test_start_and_end_time_bound_the_recurrence() -> None:
    start, end = utc(2024, 5, 1), utc(2024, 5, 3)
    a = action("cron(0 12 * * ? *)", StartTime=start, EndTime=end)
    assert next_fire_time(a, utc(2024, 4, 1)) == utc(2024, 5, 1, 12)
    assert next_fire_time(a, utc(2024, 5, 2, 12)) is None  # the 3rd's 12:00 is after EndTime


def test_due_actions_fire_once_per_window_in_time_order() -> None:
    early = action("at(2024-05-01T10:00:00)")
    late = ScheduledAction(**{**early.__dict__, "name": "b", "schedule": "at(2024-05-01T11:00:00)"})
    hourly = ScheduledAction(**{**early.__dict__, "name": "c", "schedule": "cron(0 * * * ? *)"})
    due = due_scheduled_actions([late, hourly, early], utc(2024, 5, 1, 9, 30),
                                utc(2024, 5, 1, 11, 0))
    # hourly missed 10:00 and 11:00 but fires once, ordered by its first due time (10:00).
    assert [a.name for a in due] == ["c", "nightly", "b"]
    assert due_scheduled_actions([early], utc(2024, 5, 1, 10), utc(2024, 5, 1, 12)) == []


def test_scheduled_min_above_current_scales_out_at_once_even_in_a_cooldown() -> None:
    policy = tt_policy()
    state = TargetState(make_target(min_capacity=1, max_capacity=10))
    d = execute_policy(state, fire(policy, 35, "low"), TargetContext(4), T0)
    assert d.desired == 2  # scale-in … then its cooldown would block further policy scaling
    morning = action("cron(0 8 * * ? *)", ScalableTargetAction={"MinCapacity": 6,
                                                                 "MaxCapacity": 12})
    d2 = apply_scheduled_action(d.state, morning, 2, T0 + 30)
    assert d2.desired == 6 and d2.activity is not None
    assert d2.activity.cause == "scheduled action name nightly was triggered"
    assert (d2.state.target.min_capacity, d2.state.target.max_capacity) == (6, 12)
    assert d.activity is not None and d2.overridden == (d.activity.activity_id,)


def test_scheduled_max_below_current_scales_in_and_inside_band_changes_only_bounds() -> None:
    state = TargetState(make_target(min_capacity=1, max_capacity=10))
    evening = action("cron(0 20 * * ? *)", ScalableTargetAction={"MaxCapacity": 3})
    assert apply_scheduled_action(state, evening, 8, T0).desired == 3
    d = apply_scheduled_action(state, evening, 2, T0)
    assert d.desired is None and d.activity is None and d.state.target.max_capacity == 3


def test_scheduled_action_failures_and_suspension() -> None:
    state = TargetState(make_target(min_capacity=1, max_capacity=4))
    too_high = action("cron(0 8 * * ? *)", ScalableTargetAction={"MinCapacity": 6})
    d = apply_scheduled_action(state, too_high, 2, T0)
    assert d.activity is not None and d.activity.status_code == "Failed"
    assert d.state.target.min_capacity == 1  # nothing changed
    busy = apply_scheduled_action(state, action("cron(0 8 * * ? *)",
                                  ScalableTargetAction={"MinCapacity": 3}), 2, T0, scalable=False)
    assert busy.activity is not None and busy.activity.status_code == "Failed"
    assert busy.activity.status_message is not None
    assert busy.activity.status_message.startswith(f"Resource Id [{RESOURCE}] is not scalable")
    paused = TargetState(make_target(scheduled_scaling_suspended=True))
    skipped = apply_scheduled_action(paused, too_high, 2, T0)
    assert skipped.desired is None and skipped.state == paused


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 18 * * MON-FRI *)",  # neither day field is '?'
        "cron(0 18 ? * ? *)",  # both are
        "cron(0 18 ? * MON-FRI)",  # five fields
        "cron(60 18 ? * MON *)",
        "cron(0 24 ? * MON *)",
        "cron(0 18 ? * MON-FOO *)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "at(2024-02-30T00:00:00)",
        "at(2024-02-01 00:00:00)",
        "every day",
    ],
)
def test_malformed_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValidationError):
        action(expression)


def test_bad_timezone_and_times_and_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="Timezone"):
        action("cron(0 8 * * ? *)", Timezone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError, match="EndTime"):
        action("rate(1 hour)", StartTime=T0 + 10, EndTime=T0)
    with pytest.raises(ValidationError, match="Minimum capacity"):
        action("rate(1 hour)", ScalableTargetAction={"MinCapacity": 5, "MaxCapacity": 2})
    for name in ("a:b", "a/b", " lead", "trail ", ""):
        with pytest.raises(ValidationError):
            action("rate(1 hour)", ScheduledActionName=name)


def test_update_clears_omitted_start_and_end_but_keeps_the_rest() -> None:
    first = action("rate(1 hour)", StartTime=T0, EndTime=T0 + 86400,
                   ScalableTargetAction={"MinCapacity": 2}, Timezone="Etc/GMT+9")
    req = validate_put_scheduled_action({
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ScheduledActionName": "nightly"})
    updated = put_scheduled_action(first, req, T0 + 5, REGION, ACCOUNT, new_id)
    assert (updated.start_time, updated.end_time) == (None, None)
    assert (updated.schedule, updated.min_capacity, updated.timezone) == (
        "rate(1 hour)", 2, "Etc/GMT+9")
    assert (updated.arn, updated.creation_time) == (first.arn, first.creation_time)
    assert first.arn.endswith(f":resource/sagemaker/{RESOURCE}:scheduledActionName/nightly")


def test_seven_field_cron_with_seconds_is_tolerated() -> None:
    assert parse_schedule("cron(0 0 18 ? * MON-FRI *)").kind == "cron"
