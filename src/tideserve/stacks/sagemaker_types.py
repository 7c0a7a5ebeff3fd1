"""AWS::SageMaker::Model, ::EndpointConfig and ::Endpoint over the SageMaker facade. Ref is
the ARN; Fn::GetAtt gives the name. Model and EndpointConfig properties all need replacement;
an Endpoint's EndpointConfigName changes in place through UpdateEndpoint."""

from __future__ import annotations

from typing import Any

from tideserve.errors import NotFoundError, TideserveError, ValidationError
from tideserve.stacks.providers import EVERY_PROPERTY, Made, Provider, ResourceContext, pick

SAGEMAKER_NAME_LIMIT = 63


async def _ignore_missing(ctx: ResourceContext, operation: str, params: dict[str, Any]) -> None:
    try:
        await ctx.services.call("sagemaker", operation, params)
    except (NotFoundError, ValidationError) as exc:
        if "not find" not in exc.message and "does not exist" not in exc.message:
            raise


class ModelType(Provider):
    type_name = "AWS::SageMaker::Model"
    name_property = "ModelName"
    replaced_by = EVERY_PROPERTY

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        name = self.physical_name(ctx, props, SAGEMAKER_NAME_LIMIT)
        out = await ctx.services.call("sagemaker", "CreateModel", {**props, "ModelName": name})
        return Made(out["ModelArn"], {"ModelName": name})

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        await _ignore_missing(ctx, "DeleteModel", {"ModelName": current.attributes["ModelName"]})


class EndpointConfigType(Provider):
    type_name = "AWS::SageMaker::EndpointConfig"
    name_property = "EndpointConfigName"
    replaced_by = EVERY_PROPERTY

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        name = self.physical_name(ctx, props, SAGEMAKER_NAME_LIMIT)
        out = await ctx.services.call("sagemaker", "CreateEndpointConfig",
                                      {**props, "EndpointConfigName": name})
        return Made(out["EndpointConfigArn"], {"EndpointConfigName": name})

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        await _ignore_missing(ctx, "DeleteEndpointConfig",
                              {"EndpointConfigName": current.attributes["EndpointConfigName"]})


class EndpointType(Provider):
    type_name = "AWS::SageMaker::Endpoint"
    name_property = "EndpointName"
    replaced_by = frozenset({"EndpointName"})

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        name = self.physical_name(ctx, props, SAGEMAKER_NAME_LIMIT)
        params = {**pick(props, "EndpointConfigName", "DeploymentConfig", "Tags"),
                  "EndpointName": name}
        out = await ctx.services.call("sagemaker", "CreateEndpoint", params)
        made = Made(out["EndpointArn"], {"EndpointName": name})
        try:
            await _in_service(ctx, name)
        except ValidationError:
            # A Failed endpoint still exists: remove it, since the stack never records it.
            await self.delete(ctx, made, props)
            raise
        return made

    async def update(self, ctx: ResourceContext, current: Made, old: dict[str, Any],
                     new: dict[str, Any]) -> Made:
        if old.get("EndpointConfigName") == new.get("EndpointConfigName") and \
                old.get("DeploymentConfig") == new.get("DeploymentConfig"):
            return current  # tags or retain flags only
        name = current.attributes["EndpointName"]
        params = {**pick(new, "EndpointConfigName", "RetainAllVariantProperties",
                         "ExcludeRetainedVariantProperties", "DeploymentConfig",
                         "RetainDeploymentConfig"), "EndpointName": name}
        await ctx.services.call("sagemaker", "UpdateEndpoint", params)
        await _in_service(ctx, name)
        return current

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        name = current.attributes["EndpointName"]
        await _ignore_missing(ctx, "DeleteEndpoint", {"EndpointName": name})
        while True:  # CloudFormation waits until the endpoint is gone
            try:
                await ctx.services.call("sagemaker", "DescribeEndpoint", {"EndpointName": name})
            except TideserveError:
                return
            await ctx.pause()


async def _in_service(ctx: ResourceContext, name: str) -> None:
    while True:
        desc = await ctx.services.call("sagemaker", "DescribeEndpoint", {"EndpointName": name})
        status = desc["EndpointStatus"]
        if status == "InService":
            return
        if status == "Failed":
            reason = desc.get("FailureReason") or "the endpoint failed"
            raise ValidationError(f"Resource handler returned message: \"{reason}\"")
        await ctx.pause()
