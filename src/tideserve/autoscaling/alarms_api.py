"""CloudWatch's metric-alarm operations as a service layer (botocore member names in and
out). The alarms live in the autoscaling store because the driver evaluates them each period
and runs their Auto Scaling actions; target-tracking policies put theirs here too, so
DescribeAlarms lists them like any other.

SetAlarmState changes the state at once; the actions of that transition (a step policy's
ARN, say) run at the driver's next tick, and the next evaluation brings the alarm back to
what its data says, as in CloudWatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tideserve.autoscaling.alarm_validate import validate_alarm
from tideserve.autoscaling.paging import page
from tideserve.autoscaling.storage import ScalingStorage
from tideserve.clock import Clock
from tideserve.errors import LimitExceededError, NotFoundError, ValidationError
from tideserve.scaling.alarms import MetricAlarm, describe, new_alarm_state, set_alarm_state
from tideserve.scaling.world import AlarmRecord
from tideserve.settings import Settings

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_ALARMS = 10_000  # metric alarms per region; AWS's default quota is of this order
MAX_DELETE = 100


class CloudWatchAlarms:
    def __init__(self, store: ScalingStorage, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.region = settings.region
        self.account = settings.account

    def operations(self) -> dict[str, Handler]:
        """Operation name -> handler, for the API's registry (signing name monitoring)."""
        return {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "DescribeAlarmsForMetric": self.describe_alarms_for_metric,
            "DeleteAlarms": self.delete_alarms,
            "SetAlarmState": self.set_alarm_state,
            "EnableAlarmActions": self.enable_alarm_actions,
            "DisableAlarmActions": self.disable_alarm_actions,
        }

    def _describe(self, record: AlarmRecord) -> dict[str, Any]:
        return describe(record.alarm, record.state, self.region, self.account)

    def put_metric_alarm(self, params: dict[str, Any]) -> dict[str, Any]:
        """Create (state INSUFFICIENT_DATA) or replace the configuration, keeping the state."""
        now = self.clock.now()
        alarm = validate_alarm(params, now=now)
        with self.store.lock:
            existing = self.store.alarm(alarm.name)
            if existing is None:
                if len(self.store.alarms()) >= MAX_ALARMS:
                    raise LimitExceededError(
                        f"The maximum number of alarms ({MAX_ALARMS}) has been reached",
                        code="LimitExceeded",
                    )
                record = AlarmRecord(alarm, new_alarm_state(now))
            else:
                record = replace(existing, alarm=alarm)
            self.store.put_alarms([record])
        return {}

    def describe_alarms(self, params: dict[str, Any]) -> dict[str, Any]:
        names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
        if names and prefix:
            raise ValidationError("AlarmNames and AlarmNamePrefix cannot be used together",
                                  code="InvalidParameterCombination")
        types = params.get("AlarmTypes")
        found: list[AlarmRecord] = []
        if not types or "MetricAlarm" in types:
            found = [r for r in self.store.alarms() if _selected(r, params)]
        chunk, token = page(found, params, size_field="MaxRecords",
                            invalid_code="InvalidNextToken")
        out: dict[str, Any] = {"MetricAlarms": [self._describe(r) for r in chunk],
                               "CompositeAlarms": []}
        if token:
            out["NextToken"] = token
        return out

    def describe_alarms_for_metric(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [r for r in self.store.alarms() if _on_metric(r.alarm, params)]
        return {"MetricAlarms": [self._describe(r) for r in found]}

    def delete_alarms(self, params: dict[str, Any]) -> dict[str, Any]:
        """Names that do not exist are skipped; the others are deleted (CloudWatch does the
        same)."""
        names = list(params.get("AlarmNames") or [])
        if len(names) > MAX_DELETE:
            raise ValidationError(f"At most {MAX_DELETE} alarms can be deleted at once",
                                  code="InvalidParameterValue")
        with self.store.lock:
            self.store.delete_alarms(names)
        return {}

    def set_alarm_state(self, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params.get("AlarmName"))
        with self.store.lock:
            record = self.store.alarm(name)
            if record is None:
                raise NotFoundError(f"Alarm {name} not found", code="ResourceNotFound")
            evaluation = set_alarm_state(
                record.alarm, record.state, str(params.get("StateValue")),
                str(params.get("StateReason") or ""), str(params.get("StateReasonData") or ""),
                self.clock.now(),
            )
            latest = evaluation.latest_value
            self.store.put_alarms([replace(
                record,
                state=evaluation.state,
                latest_value=latest if latest is not None else record.latest_value,
                evaluated=((evaluation.state.updated_at, latest),) if latest is not None
                else record.evaluated,
                pending_actions=record.pending_actions + evaluation.actions,
            )])
        return {}

    def enable_alarm_actions(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._actions_enabled(params, True)

    def disable_alarm_actions(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._actions_enabled(params, False)

    def _actions_enabled(self, params: dict[str, Any], enabled: bool) -> dict[str, Any]:
        names = set(params.get("AlarmNames") or [])
        with self.store.lock:
            changed = [replace(r, alarm=replace(r.alarm, actions_enabled=enabled))
                       for r in self.store.alarms() if r.name in names]
            self.store.put_alarms(changed)
        return {}


def _selected(record: AlarmRecord, params: dict[str, Any]) -> bool:
    """DescribeAlarms' AlarmNames / AlarmNamePrefix / StateValue / ActionPrefix filters."""
    names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
    if names and record.name not in names:
        return False
    if prefix and not record.name.startswith(prefix):
        return False
    state = params.get("StateValue")
    if state and record.state.value != state:
        return False
    action_prefix = params.get("ActionPrefix")
    if action_prefix:
        alarm = record.alarm
        every = alarm.alarm_actions + alarm.ok_actions + alarm.insufficient_data_actions
        return any(a.startswith(action_prefix) for a in every)
    return True


def _on_metric(alarm: MetricAlarm, params: dict[str, Any]) -> bool:
    """DescribeAlarmsForMetric: the metric (namespace, name, exact dimensions) and any of
    Statistic, ExtendedStatistic, Period and Unit given."""
    if alarm.namespace != params.get("Namespace") or alarm.metric_name != params.get(
            "MetricName"):
        return False
    dims = params.get("Dimensions")
    if dims is not None:
        wanted = tuple(sorted((d["Name"], d["Value"]) for d in dims))
        if tuple(sorted(alarm.dimensions)) != wanted:
            return False
    for member, value in (("Statistic", alarm.statistic),
                          ("ExtendedStatistic", alarm.extended_statistic),
                          ("Period", alarm.period), ("Unit", alarm.unit)):
        if params.get(member) is not None and params[member] != value:
            return False
    return True
