"""Autoscaling's persistence: scalable targets (with the engine's state), policies, scheduled
actions, activities, tags and metric alarms, in the one database, surviving restarts.

`lock` serialises read-modify-write between the API handlers (threads) and the driver's tick:
the tick reads the whole world, decides and writes back what changed, and must not undo a
RegisterScalableTarget or PutMetricAlarm that landed in between. One process owns the tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, delete, insert, select, update

from tideserve.autoscaling import codec
from tideserve.autoscaling.tables import (
    aas_tags,
    metric_alarms,
    predictive_forecasts,
    scalable_targets,
    scaling_activities,
    scaling_policies,
    scheduled_actions,
)
from tideserve.scaling.model import Activity, ScalingPolicy, ScheduledAction, TargetKey
from tideserve.scaling.predictive_model import Forecast
from tideserve.scaling.world import AlarmRecord, TargetRecord, TickResult, World

OPEN = ("Pending", "InProgress")


def _key_where(table: Table, key: TargetKey) -> Any:
    return and_(
        table.c.service_namespace == key.service_namespace,
        table.c.resource_id == key.resource_id,
        table.c.scalable_dimension == key.scalable_dimension,
    )


def _key_cols(key: TargetKey) -> dict[str, str]:
    return {"service_namespace": key.service_namespace, "resource_id": key.resource_id,
            "scalable_dimension": key.scalable_dimension}


def _upsert(conn: Connection, table: Table, where: Any, values: Mapping[str, Any]) -> None:
    if conn.execute(update(table).where(where).values(**values)).rowcount == 0:
        conn.execute(insert(table).values(**values))


class ScalingStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.lock = threading.RLock()

    # --- scalable targets -------------------------------------------------------------------

    def target(self, key: TargetKey) -> TargetRecord | None:
        with self._engine.connect() as conn:
            text = conn.execute(select(scalable_targets.c.record)
                                .where(_key_where(scalable_targets, key))).scalar_one_or_none()
        return None if text is None else codec.loads(text, TargetRecord)

    def target_by_arn(self, arn: str) -> TargetRecord | None:
        with self._engine.connect() as conn:
            text = conn.execute(select(scalable_targets.c.record)
                                .where(scalable_targets.c.arn == arn)).scalar_one_or_none()
        return None if text is None else codec.loads(text, TargetRecord)

    def targets(self) -> list[TargetRecord]:
        """Oldest first."""
        query = select(scalable_targets.c.record).order_by(
            scalable_targets.c.creation_time, scalable_targets.c.resource_id)
        return [codec.loads(t, TargetRecord) for t in self._scalars(query)]

    def put_target(self, record: TargetRecord) -> None:
        with self._engine.begin() as conn:
            self._put_target(conn, record)

    def delete_target(self, key: TargetKey) -> None:
        with self._engine.begin() as conn:
            self._delete_target(conn, key)

    # --- policies and scheduled actions ---------------------------------------------------

    def policy(self, key: TargetKey, name: str) -> ScalingPolicy | None:
        query = select(scaling_policies.c.policy).where(
            _key_where(scaling_policies, key), scaling_policies.c.name == name)
        found = self._scalars(query)
        return codec.loads(found[0], ScalingPolicy) if found else None

    def policies(self) -> list[ScalingPolicy]:
        query = select(scaling_policies.c.policy).order_by(
            scaling_policies.c.creation_time, scaling_policies.c.name)
        return [codec.loads(t, ScalingPolicy) for t in self._scalars(query)]

    def put_policy(self, policy: ScalingPolicy) -> None:
        with self._engine.begin() as conn:
            _upsert(conn, scaling_policies, scaling_policies.c.arn == policy.arn, {
                "arn": policy.arn, **_key_cols(policy.key), "name": policy.name,
                "creation_time": policy.creation_time, "policy": codec.dumps(policy)})

    def delete_policies(self, arns: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(scaling_policies).where(scaling_policies.c.arn.in_(list(arns))))

    def action(self, key: TargetKey, name: str) -> ScheduledAction | None:
        query = select(scheduled_actions.c.action).where(
            _key_where(scheduled_actions, key), scheduled_actions.c.name == name)
        found = self._scalars(query)
        return codec.loads(found[0], ScheduledAction) if found else None

    def actions(self) -> list[ScheduledAction]:
        query = select(scheduled_actions.c.action).order_by(
            scheduled_actions.c.creation_time, scheduled_actions.c.name)
        return [codec.loads(t, ScheduledAction) for t in self._scalars(query)]

    def put_action(self, action: ScheduledAction) -> None:
        with self._engine.begin() as conn:
            _upsert(conn, scheduled_actions, scheduled_actions.c.arn == action.arn, {
                "arn": action.arn, **_key_cols(action.key), "name": action.name,
                "creation_time": action.creation_time, "action": codec.dumps(action)})

    def delete_actions(self, arns: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(scheduled_actions).where(scheduled_actions.c.arn.in_(list(arns))))

    # --- activities -------------------------------------------------------------------------

    def put_activities(self, activities: Iterable[Activity]) -> None:
        with self._engine.begin() as conn:
            self._put_activities(conn, activities)

    def activities(self, key: TargetKey | None, namespace: str, resource_id: str | None,
                   include_not_scaled: bool, since: float) -> list[Activity]:
        """Newest first. `key` narrows to one target; else `resource_id` (any dimension)."""
        t = scaling_activities
        query = select(t.c.activity).where(t.c.service_namespace == namespace,
                                           t.c.start_time >= since)
        if key is not None:
            query = query.where(_key_where(t, key))
        elif resource_id is not None:
            query = query.where(t.c.resource_id == resource_id)
        if not include_not_scaled:
            query = query.where(t.c.scaled.is_(True))
        query = query.order_by(t.c.start_time.desc(), t.c.activity_id)
        return [codec.loads(text, Activity) for text in self._scalars(query)]

    # --- tags -------------------------------------------------------------------------------

    def tags(self, arn: str) -> dict[str, str]:
        query = select(aas_tags.c.key, aas_tags.c.value).where(aas_tags.c.resource_arn == arn)
        with self._engine.connect() as conn:
            return {k: v for k, v in conn.execute(query).all()}

    def put_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        with self._engine.begin() as conn:
            for key, value in tags.items():
                where = and_(aas_tags.c.resource_arn == arn, aas_tags.c.key == key)
                _upsert(conn, aas_tags, where, {"resource_arn": arn, "key": key, "value": value})

    def delete_tags(self, arn: str, keys: Iterable[str] | None = None) -> None:
        query = delete(aas_tags).where(aas_tags.c.resource_arn == arn)
        if keys is not None:
            query = query.where(aas_tags.c.key.in_(list(keys)))
        with self._engine.begin() as conn:
            conn.execute(query)

    # --- metric alarms ----------------------------------------------------------------------

    def alarm(self, name: str) -> AlarmRecord | None:
        found = self._scalars(select(metric_alarms.c.record).where(metric_alarms.c.name == name))
        return codec.loads(found[0], AlarmRecord) if found else None

    def alarms(self) -> list[AlarmRecord]:
        """In name order, as DescribeAlarms lists them."""
        query = select(metric_alarms.c.record).order_by(metric_alarms.c.name)
        return [codec.loads(t, AlarmRecord) for t in self._scalars(query)]

    def put_alarms(self, records: Iterable[AlarmRecord]) -> None:
        with self._engine.begin() as conn:
            for record in records:
                self._put_alarm(conn, record)

    def delete_alarms(self, names: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(metric_alarms).where(metric_alarms.c.name.in_(list(names))))

    # --- the driver's world -----------------------------------------------------------------

    def load_world(self) -> World:
        t = scaling_activities
        open_query = select(t.c.activity).where(t.c.open.is_(True))
        return World(
            targets=tuple(self.targets()),
            policies=tuple(self.policies()),
            actions=tuple(self.actions()),
            alarms=tuple(self.alarms()),
            open_activities=tuple(codec.loads(a, Activity) for a in self._scalars(open_query)),
        )

    def save_world(self, before: World, result: TickResult) -> None:
        """Write what the tick changed, in one transaction."""
        after = result.world
        with self._engine.begin() as conn:
            old_targets = {r.key: r for r in before.targets}
            for record in after.targets:
                if old_targets.pop(record.key, None) != record:
                    self._put_target(conn, record)
            for key in old_targets:
                self._delete_target(conn, key)
            kept_policies = {p.arn for p in after.policies}
            gone = [p.arn for p in before.policies if p.arn not in kept_policies]
            conn.execute(delete(scaling_policies).where(scaling_policies.c.arn.in_(gone)))
            kept_actions = {a.arn for a in after.actions}
            gone = [a.arn for a in before.actions if a.arn not in kept_actions]
            conn.execute(delete(scheduled_actions).where(scheduled_actions.c.arn.in_(gone)))
            old_alarms = {r.name: r for r in before.alarms}
            for alarm in after.alarms:
                if old_alarms.pop(alarm.name, None) != alarm:
                    self._put_alarm(conn, alarm)
            conn.execute(delete(metric_alarms).where(metric_alarms.c.name.in_(list(old_alarms))))
            self._put_activities(conn, result.activities)

    # --- helpers ----------------------------------------------------------------------------

    def _scalars(self, query: Any) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars().all())

    @staticmethod
    def _put_target(conn: Connection, record: TargetRecord) -> None:
        target = record.target
        _upsert(conn, scalable_targets, _key_where(scalable_targets, target.key), {
            **_key_cols(target.key), "arn": target.arn, "creation_time": target.creation_time,
            "record": codec.dumps(record)})

    def forecast(self, policy_arn: str) -> Forecast | None:
        t = predictive_forecasts
        rows = self._scalars(select(t.c.forecast).where(t.c.policy_arn == policy_arn))
        return codec.loads(rows[0], Forecast) if rows else None

    def put_forecasts(self, forecasts: Iterable[Forecast]) -> None:
        t = predictive_forecasts
        with self._engine.begin() as conn:
            for f in forecasts:
                _upsert(conn, t, t.c.policy_arn == f.policy_arn, {
                    "policy_arn": f.policy_arn, "update_time": f.update_time,
                    "forecast": codec.dumps(f)})

    @staticmethod
    def _delete_target(conn: Connection, key: TargetKey) -> None:
        arn = conn.execute(select(scalable_targets.c.arn)
                           .where(_key_where(scalable_targets, key))).scalar_one_or_none()
        conn.execute(delete(scalable_targets).where(_key_where(scalable_targets, key)))
        if arn is not None:
            conn.execute(delete(aas_tags).where(aas_tags.c.resource_arn == arn))

    @staticmethod
    def _put_alarm(conn: Connection, record: AlarmRecord) -> None:
        _upsert(conn, metric_alarms, metric_alarms.c.name == record.name,
                {"name": record.name, "record": codec.dumps(record)})

    @staticmethod
    def _put_activities(conn: Connection, activities: Iterable[Activity]) -> None:
        t = scaling_activities
        for a in activities:
            _upsert(conn, t, t.c.activity_id == a.activity_id, {
                "activity_id": a.activity_id, **_key_cols(a.key), "start_time": a.start_time,
                "scaled": a.scaled, "open": a.status_code in OPEN, "activity": codec.dumps(a)})
