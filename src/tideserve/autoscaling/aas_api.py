"""Application Auto Scaling's operations for SageMaker variants, as a service layer: each
handler takes the input dict with botocore's member names and returns botocore's output
shape (timestamps as aware datetimes). Validation and decisions are the engine's
(`tideserve.scaling`); this module looks things up, stores them and keeps the alarms that
target-tracking policies own in step with the policies.

Capacity is never changed here: RegisterScalableTarget marks the target for Min/Max
enforcement and the driver's next tick (within a second) applies it, like every other
scaling activity.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tideserve.autoscaling.describe import (
    describe_scalable_target,
    describe_scaling_activity,
    describe_scaling_policy,
    describe_scheduled_action,
)
from tideserve.autoscaling.paging import page
from tideserve.autoscaling.storage import ScalingStorage
from tideserve.autoscaling.tagging import TaggingOperations, check_tags
from tideserve.autoscaling.validate import (
    check_policy_fits,
    put_policy,
    register_target,
    target_key,
    validate_put_scaling_policy,
    validate_register,
)
from tideserve.autoscaling.validate_schedule import (
    check_action_fits,
    forecast_time,
    put_scheduled_action,
    validate_put_scheduled_action,
)
from tideserve.clock import Clock
from tideserve.errors import LimitExceededError, NotFoundError, ValidationError
from tideserve.scaling.alarms import new_alarm_state
from tideserve.scaling.engine import TargetState
from tideserve.scaling.model import (
    SERVICE_NAMESPACE,
    ScalableTarget,
    ScalingPolicy,
    TargetKey,
    delete_policy_plan,
    deregister_plan,
)
from tideserve.scaling.ports import CapacityPort
from tideserve.scaling.predictive import forecast_capacity
from tideserve.scaling.target_tracking import target_tracking_alarms
from tideserve.scaling.world import AlarmRecord, TargetRecord
from tideserve.settings import Settings

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_TARGETS = 500  # scalable targets per resource type per region (AAS quota)
HISTORY_SECONDS = 6 * 7 * 86400  # DescribeScalingActivities shows the last six weeks


def _no_target(key: TargetKey) -> NotFoundError:
    return NotFoundError(
        f"No scalable target registered for service namespace: {key.service_namespace}, "
        f"resource ID: {key.resource_id}, scalable dimension: {key.scalable_dimension}"
    )


def _namespace(params: dict[str, Any]) -> str:
    namespace = params.get("ServiceNamespace")
    if namespace != SERVICE_NAMESPACE:
        raise ValidationError(
            f"Unsupported service namespace {namespace!r}: tideserve scales SageMaker "
            "variants (ServiceNamespace sagemaker)"
        )
    return SERVICE_NAMESPACE


def _matches(key: TargetKey, params: dict[str, Any], ids_field: str | None = None) -> bool:
    """The ResourceId(s) / ScalableDimension filters of the Describe* operations."""
    if ids_field is not None and params.get(ids_field):
        if key.resource_id not in params[ids_field]:
            return False
    elif ids_field is None and params.get("ResourceId"):
        if key.resource_id != params["ResourceId"]:
            return False
    dimension = params.get("ScalableDimension")
    return dimension is None or key.scalable_dimension == dimension


class AutoScalingApi:
    def __init__(
        self,
        store: ScalingStorage,
        capacity: CapacityPort,
        clock: Clock,
        settings: Settings,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.store = store
        self.capacity = capacity
        self.clock = clock
        self.region = settings.region
        self.account = settings.account
        self.new_id = new_id
        self.time_scale = settings.time_scale
        self.tagging = TaggingOperations(store)

    def operations(self) -> dict[str, Handler]:
        """Operation name -> handler, for the API's registry (signing name
        application-autoscaling)."""
        return {
            "RegisterScalableTarget": self.register_scalable_target,
            "DescribeScalableTargets": self.describe_scalable_targets,
            "DeregisterScalableTarget": self.deregister_scalable_target,
            "PutScalingPolicy": self.put_scaling_policy,
            "DescribeScalingPolicies": self.describe_scaling_policies,
            "DeleteScalingPolicy": self.delete_scaling_policy,
            "PutScheduledAction": self.put_scheduled_action,
            "DescribeScheduledActions": self.describe_scheduled_actions,
            "DeleteScheduledAction": self.delete_scheduled_action,
            "DescribeScalingActivities": self.describe_scaling_activities,
            "GetPredictiveScalingForecast": self.get_predictive_scaling_forecast,
            **self.tagging.operations(),
        }

    def scalable_resource_ids(self) -> set[str]:
        """Variants registered as scalable targets (`endpoint/<ep>/variant/<v>`), for the
        SageMaker side: UpdateEndpoint may not change such a variant's instance type."""
        return {r.key.resource_id for r in self.store.targets()}

    # --- scalable targets -------------------------------------------------------------------

    def register_scalable_target(self, params: dict[str, Any]) -> dict[str, Any]:
        req = validate_register(params)
        tags = check_tags(params.get("Tags") or {})
        capacity = self.capacity.capacity(req.key.resource_id)
        if capacity is None:
            # AWS's wording for a missing SageMaker variant is UNCONFIRMED; this follows the
            # shape of its ECS message ("ECS service doesn't exist: service/...").
            raise ValidationError(
                f"SageMaker endpoint variant doesn't exist: {req.key.resource_id}"
            )
        if capacity.dimension != req.key.scalable_dimension:
            # A serverless variant has no instance count and an instance variant no
            # provisioned concurrency; AWS refuses the mismatch (wording UNCONFIRMED).
            raise ValidationError(
                f"Scalable dimension {req.key.scalable_dimension} is not valid for "
                f"{req.key.resource_id}: its capacity is scaled by {capacity.dimension}"
            )
        now = self.clock.now()
        with self.store.lock:
            existing = self.store.target(req.key)
            if existing is None and len(self.store.targets()) >= MAX_TARGETS:
                raise LimitExceededError(
                    f"Maximum number of scalable targets ({MAX_TARGETS}) reached")
            old = existing.target if existing else None
            target = register_target(old, req, now, self.region, self.account)
            if existing is None:
                record = TargetRecord(TargetState(target), schedule_checked=now,
                                      check_bounds=True)
            else:
                record = replace(existing, state=replace(existing.state, target=target),
                                 check_bounds=True)
            self.store.put_target(record)
            if existing is None and tags:
                self.store.put_tags(target.arn, tags)
        return {"ScalableTargetARN": target.arn}

    def describe_scalable_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace = _namespace(params)
        found = [r.target for r in self.store.targets()
                 if r.key.service_namespace == namespace and _matches(r.key, params, "ResourceIds")]
        chunk, token = page(found, params)
        out: dict[str, Any] = {"ScalableTargets": [self._with_prediction(t) for t in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def _with_prediction(self, target: ScalableTarget) -> dict[str, Any]:
        """PredictedCapacity: what the target's predictive policies forecast for now."""
        out = describe_scalable_target(target)
        now = self.clock.now()
        predicted = [forecast_capacity(p.predictive, self.store.forecast(p.arn), target, now,
                                       self.time_scale)
                     for p in self.store.policies()
                     if p.key == target.key and p.predictive is not None]
        known = [c for c in predicted if c is not None]
        if known:
            out["PredictedCapacity"] = max(known)
        return out

    def deregister_scalable_target(self, params: dict[str, Any]) -> dict[str, Any]:
        """The target goes with all its policies, scheduled actions and the alarms its
        target-tracking policies own; the history of its activities stays."""
        key = target_key(params)
        with self.store.lock:
            record = self.store.target(key)
            if record is None:
                raise _no_target(key)
            plan = deregister_plan(record.target, self.store.policies(), self.store.actions())
            mine = [a for a in self.store.actions() if a.key == key]
            self.store.delete_policies(plan.policy_arns)
            self.store.delete_actions(a.arn for a in mine)
            self.store.delete_alarms(plan.alarm_names)
            self.store.delete_target(key)
        return {}

    # --- scaling policies -------------------------------------------------------------------

    def put_scaling_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        req = validate_put_scaling_policy(params)
        now = self.clock.now()
        with self.store.lock:
            if self.store.target(req.key) is None:
                raise _no_target(req.key)
            existing = self.store.policy(req.key, req.name)
            policy = put_policy(existing, req, now, self.region, self.account, self.new_id)
            check_policy_fits(policy, self.store.policies())
            self._replace_alarms(existing, policy, now)
            self.store.put_policy(policy)
        out: dict[str, Any] = {"PolicyARN": policy.arn}
        if policy.predictive is not None:
            out["Alarms"] = []  # AWS makes no alarms for a predictive policy
        if policy.tracking is not None:
            out["Alarms"] = [{"AlarmName": a.name, "AlarmARN": a.arn} for a in policy.alarms]
        return out

    def _replace_alarms(self, old: ScalingPolicy | None, new: ScalingPolicy, now: float) -> None:
        """A target-tracking put re-creates the policy's alarms under new names (AWS does);
        the old revision's alarms go."""
        if old is not None and old.alarms:
            self.store.delete_alarms(a.name for a in old.alarms)
        if new.tracking is None:
            return
        state = new_alarm_state(now)
        self.store.put_alarms(
            AlarmRecord(replace(alarm, configuration_updated_at=now), state)
            for alarm in target_tracking_alarms(new)
        )

    def describe_scaling_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace = _namespace(params)
        names = params.get("PolicyNames") or None
        found = [p for p in self.store.policies()
                 if p.key.service_namespace == namespace and _matches(p.key, params)
                 and (names is None or p.name in names)]
        chunk, token = page(found, params)
        out: dict[str, Any] = {"ScalingPolicies": [describe_scaling_policy(p) for p in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def delete_scaling_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        """Target tracking: the policy's alarms go too. Step scaling: the user's alarm stays,
        only the policy's ARN leaves its AlarmActions (botocore: "Deleting a step scaling
        policy deletes the underlying alarm action, but does not delete the CloudWatch
        alarm")."""
        key = target_key(params)
        name = params.get("PolicyName")
        with self.store.lock:
            policy = self.store.policy(key, str(name))
            if policy is None:
                raise NotFoundError(
                    f"No scaling policy found for service namespace: {key.service_namespace}, "
                    f"resource ID: {key.resource_id}, scalable dimension: "
                    f"{key.scalable_dimension}, policy name: {name}"
                )
            plan = delete_policy_plan(policy)
            self.store.delete_alarms(plan.alarm_names)
            if plan.detach_action_arn is not None:
                self._detach(plan.detach_action_arn)
            self.store.delete_policies([policy.arn])
            self._forget_cooldown(key, policy.arn)
        return {}

    def _detach(self, action_arn: str) -> None:
        changed = []
        for record in self.store.alarms():
            actions = record.alarm.alarm_actions
            if action_arn in actions:
                kept = tuple(a for a in actions if a != action_arn)
                changed.append(replace(record, alarm=replace(record.alarm, alarm_actions=kept)))
        self.store.put_alarms(changed)

    def _forget_cooldown(self, key: TargetKey, policy_arn: str) -> None:
        record = self.store.target(key)
        if record is None:
            return
        kept = tuple(c for c in record.state.cooldowns if c.policy_arn != policy_arn)
        if kept != record.state.cooldowns:
            self.store.put_target(replace(record, state=replace(record.state, cooldowns=kept)))

    # --- scheduled actions ------------------------------------------------------------------

    def put_scheduled_action(self, params: dict[str, Any]) -> dict[str, Any]:
        req = validate_put_scheduled_action(params)
        now = self.clock.now()
        with self.store.lock:
            if self.store.target(req.key) is None:
                raise _no_target(req.key)
            existing = self.store.action(req.key, req.name)
            action = put_scheduled_action(existing, req, now, self.region, self.account,
                                          self.new_id)
            check_action_fits(action, self.store.actions())
            self.store.put_action(action)
        return {}

    def describe_scheduled_actions(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace = _namespace(params)
        names = params.get("ScheduledActionNames") or None
        found = [a for a in self.store.actions()
                 if a.key.service_namespace == namespace and _matches(a.key, params)
                 and (names is None or a.name in names)]
        chunk, token = page(found, params)
        out: dict[str, Any] = {"ScheduledActions": [describe_scheduled_action(a) for a in chunk]}
        if token:
            out["NextToken"] = token
        return out

    def delete_scheduled_action(self, params: dict[str, Any]) -> dict[str, Any]:
        key = target_key(params)
        name = params.get("ScheduledActionName")
        with self.store.lock:
            action = self.store.action(key, str(name))
            if action is None:
                raise NotFoundError(
                    f"No scheduled action found for service namespace: "
                    f"{key.service_namespace}, resource ID: {key.resource_id}, scalable "
                    f"dimension: {key.scalable_dimension}, scheduled action name: {name}"
                )
            self.store.delete_actions([action.arn])
        return {}

    # --- activities -------------------------------------------------------------------------

    def describe_scaling_activities(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first, the last six weeks; decision records that did not scale only with
        IncludeNotScaledActivities."""
        namespace = _namespace(params)
        resource_id = params.get("ResourceId")
        dimension = params.get("ScalableDimension")
        if dimension is not None and resource_id is None:
            raise ValidationError("If you specify a scalable dimension, you must also specify "
                                  "a resource ID")
        key = TargetKey(namespace, resource_id, dimension) if dimension and resource_id else None
        since = self.clock.now() - HISTORY_SECONDS
        found = self.store.activities(key, namespace, resource_id,
                                      bool(params.get("IncludeNotScaledActivities")), since)
        chunk, token = page(found, params)
        out: dict[str, Any] = {"ScalingActivities": [describe_scaling_activity(a) for a in chunk]}
        if token:
            out["NextToken"] = token
        return out

    # --- predictive scaling -----------------------------------------------------------------

    def get_predictive_scaling_forecast(self, params: dict[str, Any]) -> dict[str, Any]:
        """The forecast the driver acts on, between StartTime (inclusive) and EndTime
        (exclusive), one value per forecast bin (a metric period; AWS's are hourly)."""
        key = target_key(params)
        name = params.get("PolicyName")
        start, end = forecast_time(params, "StartTime"), forecast_time(params, "EndTime")
        if end <= start:
            raise ValidationError("EndTime must be after StartTime")
        if end - start > 30 * 86400:
            raise ValidationError("The time range between StartTime and EndTime can't be "
                                  "longer than 30 days")
        policy = self.store.policy(key, str(name))
        if policy is None or policy.predictive is None:
            raise ValidationError(f"No predictive scaling policy named {name} on "
                                  f"{key.resource_id}")
        forecast = self.store.forecast(policy.arn)
        stamps: list[datetime] = []
        load: list[float] = []
        capacity: list[float] = []
        if forecast is not None:
            for i, (lv, cv) in enumerate(zip(forecast.load, forecast.capacity, strict=True)):
                t = forecast.start + i * forecast.step
                if start <= t < end:
                    stamps.append(datetime.fromtimestamp(t, UTC))
                    load.append(lv)
                    capacity.append(float(cv))
        spec = policy.predictive.spec
        updated = forecast.update_time if forecast is not None else self.clock.now()
        return {
            "LoadForecast": [{"Timestamps": stamps, "Values": load,
                              "MetricSpecification": json.loads(spec.echo)}],
            "CapacityForecast": {"Timestamps": list(stamps), "Values": capacity},
            "UpdateTime": datetime.fromtimestamp(updated, UTC),
        }
