"""AWS::ApplicationAutoScaling::ScalableTarget and ::ScalingPolicy over the AAS API.

A ScalableTarget's Ref is `<ResourceId>|<ScalableDimension>|<ServiceNamespace>`, the form a
ScalingPolicy's ScalingTargetId takes; a ScalingPolicy's Ref is its ARN. Capacities and policy
configurations change in place (PutScalingPolicy on the same name keeps the ARN)."""

from __future__ import annotations

from typing import Any

from tideserve.errors import NotFoundError, ValidationError
from tideserve.stacks.providers import Made, Provider, ResourceContext, pick

_IDENTIFIERS = ("ResourceId", "ScalableDimension", "ServiceNamespace")


class ScalableTargetType(Provider):
    type_name = "AWS::ApplicationAutoScaling::ScalableTarget"
    replaced_by = frozenset(_IDENTIFIERS)

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        await self._register(ctx, props)
        await self._schedule(ctx, props, {})
        target_id = "|".join(str(props[k]) for k in _IDENTIFIERS)
        return Made(target_id, {"Id": target_id})

    async def update(self, ctx: ResourceContext, current: Made, old: dict[str, Any],
                     new: dict[str, Any]) -> Made:
        await self._register(ctx, new)
        await self._schedule(ctx, new, old)
        return current

    async def _schedule(self, ctx: ResourceContext, props: dict[str, Any],
                        old: dict[str, Any]) -> None:
        """The ScheduledActions property: each one put; those no longer listed deleted."""
        target = pick(props, *_IDENTIFIERS)
        wanted = {a["ScheduledActionName"]: a for a in props.get("ScheduledActions") or []}
        for action in wanted.values():
            await ctx.services.call("application-autoscaling", "PutScheduledAction",
                                    {**action, **target})
        for action in old.get("ScheduledActions") or []:
            if action["ScheduledActionName"] not in wanted:
                await ctx.services.call("application-autoscaling", "DeleteScheduledAction", {
                    **target, "ScheduledActionName": action["ScheduledActionName"]})

    async def _register(self, ctx: ResourceContext, props: dict[str, Any]) -> None:
        params = pick(props, *_IDENTIFIERS, "MinCapacity", "MaxCapacity", "RoleARN",
                      "SuspendedState")
        await ctx.services.call("application-autoscaling", "RegisterScalableTarget", params)

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        try:
            await ctx.services.call("application-autoscaling", "DeregisterScalableTarget",
                                    pick(props, *_IDENTIFIERS))
        except NotFoundError:
            pass


def target_of(props: dict[str, Any]) -> dict[str, Any]:
    """The policy's target: ScalingTargetId xor the three identifiers, as CloudFormation
    requires."""
    given = [k for k in _IDENTIFIERS if k in props]
    if "ScalingTargetId" in props:
        if given:
            raise ValidationError("ScalingTargetId and ResourceId/ScalableDimension/"
                                  "ServiceNamespace cannot both be specified")
        parts = str(props["ScalingTargetId"]).split("|")
        if len(parts) != 3:
            raise ValidationError(f"Invalid ScalingTargetId {props['ScalingTargetId']!r}")
        return dict(zip(_IDENTIFIERS, parts, strict=True))
    if len(given) != 3:
        raise ValidationError("Either ScalingTargetId or ResourceId, ScalableDimension and "
                              "ServiceNamespace must be specified")
    return pick(props, *_IDENTIFIERS)


class ScalingPolicyType(Provider):
    type_name = "AWS::ApplicationAutoScaling::ScalingPolicy"
    name_property = "PolicyName"
    replaced_by = frozenset({"PolicyName", "ScalingTargetId", *_IDENTIFIERS})

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        arn = await self._put(ctx, props)
        return Made(arn, {"Arn": arn})

    async def update(self, ctx: ResourceContext, current: Made, old: dict[str, Any],
                     new: dict[str, Any]) -> Made:
        arn = await self._put(ctx, new)
        return Made(arn, {"Arn": arn})

    async def _put(self, ctx: ResourceContext, props: dict[str, Any]) -> str:
        params = {**target_of(props), **pick(
            props, "PolicyName", "PolicyType", "TargetTrackingScalingPolicyConfiguration",
            "StepScalingPolicyConfiguration", "PredictiveScalingPolicyConfiguration")}
        out = await ctx.services.call("application-autoscaling", "PutScalingPolicy", params)
        return str(out["PolicyARN"])

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        params = {**target_of(props), "PolicyName": props["PolicyName"]}
        try:
            await ctx.services.call("application-autoscaling", "DeleteScalingPolicy", params)
        except NotFoundError:
            pass
