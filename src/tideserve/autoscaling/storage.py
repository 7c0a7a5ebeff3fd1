"""What autoscaling's service layer and driver need from storage (`ScalingStorage`), and the
in-memory implementation the simulator builds its world with (`MemoryScalingStore`): the same
operations as the SQL `ScalingStore`, in the same orders, over plain dicts — so a policy set
goes through the live AAS and CloudWatch handlers without a database, and importing the
simulator imports no SQLAlchemy."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from tideserve.scaling.model import Activity, ScalingPolicy, ScheduledAction, TargetKey
from tideserve.scaling.predictive_model import Forecast
from tideserve.scaling.world import AlarmRecord, TargetRecord, TickResult, World

OPEN = ("Pending", "InProgress")


class ScalingStorage(Protocol):
    """Targets, policies, scheduled actions, activities, tags and alarms. `lock` serialises
    read-modify-write between the API handlers and the driver's step."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...
    def target(self, key: TargetKey) -> TargetRecord | None: ...
    def target_by_arn(self, arn: str) -> TargetRecord | None: ...
    def targets(self) -> list[TargetRecord]: ...
    def put_target(self, record: TargetRecord) -> None: ...
    def delete_target(self, key: TargetKey) -> None: ...
    def policy(self, key: TargetKey, name: str) -> ScalingPolicy | None: ...
    def policies(self) -> list[ScalingPolicy]: ...
    def put_policy(self, policy: ScalingPolicy) -> None: ...
    def delete_policies(self, arns: Iterable[str]) -> None: ...
    def action(self, key: TargetKey, name: str) -> ScheduledAction | None: ...
    def actions(self) -> list[ScheduledAction]: ...
    def put_action(self, action: ScheduledAction) -> None: ...
    def delete_actions(self, arns: Iterable[str]) -> None: ...
    def put_activities(self, activities: Iterable[Activity]) -> None: ...
    def activities(self, key: TargetKey | None, namespace: str, resource_id: str | None,
                   include_not_scaled: bool, since: float) -> list[Activity]: ...
    def tags(self, arn: str) -> dict[str, str]: ...
    def put_tags(self, arn: str, tags: Mapping[str, str]) -> None: ...
    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None: ...
    def alarm(self, name: str) -> AlarmRecord | None: ...
    def alarms(self) -> list[AlarmRecord]: ...
    def put_alarms(self, records: Iterable[AlarmRecord]) -> None: ...
    def delete_alarms(self, names: Iterable[str]) -> None: ...
    def load_world(self) -> World: ...
    def save_world(self, before: World, result: TickResult) -> None: ...
    def forecast(self, policy_arn: str) -> Forecast | None: ...
    def put_forecasts(self, forecasts: Iterable[Forecast]) -> None: ...


class MemoryScalingStore:
    """ScalingStorage in dicts, for one process's lifetime (the simulator's world)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._targets: dict[TargetKey, TargetRecord] = {}
        self._policies: dict[str, ScalingPolicy] = {}  # by ARN
        self._actions: dict[str, ScheduledAction] = {}  # by ARN
        self._forecasts: dict[str, Forecast] = {}  # by PolicyARN
        self._activities: dict[str, Activity] = {}  # by id, in insertion order
        self._tags: dict[str, dict[str, str]] = {}  # by resource ARN
        self._alarms: dict[str, AlarmRecord] = {}  # by name

    @property
    def lock(self) -> AbstractContextManager[Any]:
        return self._lock

    def target(self, key: TargetKey) -> TargetRecord | None:
        return self._targets.get(key)

    def target_by_arn(self, arn: str) -> TargetRecord | None:
        return next((r for r in self._targets.values() if r.target.arn == arn), None)

    def targets(self) -> list[TargetRecord]:
        """Oldest first, as the SQL store orders them."""
        return sorted(self._targets.values(),
                      key=lambda r: (r.target.creation_time, r.key.resource_id))

    def put_target(self, record: TargetRecord) -> None:
        self._targets[record.key] = record

    def delete_target(self, key: TargetKey) -> None:
        record = self._targets.pop(key, None)
        if record is not None:
            self._tags.pop(record.target.arn, None)

    def policy(self, key: TargetKey, name: str) -> ScalingPolicy | None:
        return next((p for p in self._policies.values() if p.key == key and p.name == name),
                    None)

    def policies(self) -> list[ScalingPolicy]:
        return sorted(self._policies.values(), key=lambda p: (p.creation_time, p.name))

    def put_policy(self, policy: ScalingPolicy) -> None:
        self._policies[policy.arn] = policy

    def delete_policies(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._policies.pop(arn, None)

    def action(self, key: TargetKey, name: str) -> ScheduledAction | None:
        return next((a for a in self._actions.values() if a.key == key and a.name == name),
                    None)

    def actions(self) -> list[ScheduledAction]:
        return sorted(self._actions.values(), key=lambda a: (a.creation_time, a.name))

    def put_action(self, action: ScheduledAction) -> None:
        self._actions[action.arn] = action

    def delete_actions(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._actions.pop(arn, None)

    def put_activities(self, activities: Iterable[Activity]) -> None:
        for a in activities:
            self._activities[a.activity_id] = a

    def activities(self, key: TargetKey | None, namespace: str, resource_id: str | None,
                   include_not_scaled: bool, since: float) -> list[Activity]:
        """Newest first. `key` narrows to one target; else `resource_id` (any dimension)."""
        found = [a for a in self._activities.values()
                 if a.key.service_namespace == namespace and a.start_time >= since
                 and (key is None or a.key == key)
                 and (key is not None or resource_id is None or a.key.resource_id == resource_id)
                 and (include_not_scaled or a.scaled)]
        found.sort(key=lambda a: a.activity_id)
        return sorted(found, key=lambda a: a.start_time, reverse=True)

    def tags(self, arn: str) -> dict[str, str]:
        return dict(self._tags.get(arn, {}))

    def put_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        self._tags.setdefault(arn, {}).update(tags)

    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None:
        if keys is None:
            self._tags.pop(arn, None)
            return
        for key in keys:
            self._tags.get(arn, {}).pop(key, None)

    def alarm(self, name: str) -> AlarmRecord | None:
        return self._alarms.get(name)

    def alarms(self) -> list[AlarmRecord]:
        return [self._alarms[n] for n in sorted(self._alarms)]

    def put_alarms(self, records: Iterable[AlarmRecord]) -> None:
        for record in records:
            self._alarms[record.name] = record

    def delete_alarms(self, names: Iterable[str]) -> None:
        for name in names:
            self._alarms.pop(name, None)

    def load_world(self) -> World:
        return World(
            targets=tuple(self.targets()),
            policies=tuple(self.policies()),
            actions=tuple(self.actions()),
            alarms=tuple(self.alarms()),
            open_activities=tuple(a for a in self._activities.values()
                                  if a.status_code in OPEN),
        )

    def save_world(self, before: World, result: TickResult) -> None:
        """What the step changed, relative to `before` (as the SQL store writes it)."""
        after = result.world
        old_targets = {r.key: r for r in before.targets}
        for record in after.targets:
            if old_targets.pop(record.key, None) != record:
                self.put_target(record)
        for key in old_targets:
            self.delete_target(key)
        kept = {p.arn for p in after.policies}
        self.delete_policies(p.arn for p in before.policies if p.arn not in kept)
        kept = {a.arn for a in after.actions}
        self.delete_actions(a.arn for a in before.actions if a.arn not in kept)
        old_alarms = {r.name: r for r in before.alarms}
        self.put_alarms(r for r in after.alarms if old_alarms.pop(r.name, None) != r)
        self.delete_alarms(old_alarms)
        self.put_activities(result.activities)

    def forecast(self, policy_arn: str) -> Forecast | None:
        return self._forecasts.get(policy_arn)

    def put_forecasts(self, forecasts: Iterable[Forecast]) -> None:
        for f in forecasts:
            self._forecasts[f.policy_arn] = f
