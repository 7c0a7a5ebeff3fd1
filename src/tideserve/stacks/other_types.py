"""AWS::CloudWatch::Alarm (Ref: the alarm name), AWS::S3::Bucket (Ref: the bucket name) in the
embedded object store, and AWS::CDK::Metadata (accepted, nothing made)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Protocol

from tideserve.errors import NotFoundError
from tideserve.stacks.providers import Made, Provider, ResourceContext

ALARM_NAME_LIMIT = 255
BUCKET_NAME_LIMIT = 63


class AlarmType(Provider):
    type_name = "AWS::CloudWatch::Alarm"
    name_property = "AlarmName"
    replaced_by = frozenset({"AlarmName"})

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        name = self.physical_name(ctx, props, ALARM_NAME_LIMIT)
        return await self._put(ctx, name, props)

    async def update(self, ctx: ResourceContext, current: Made, old: dict[str, Any],
                     new: dict[str, Any]) -> Made:
        return await self._put(ctx, current.physical_id, new)

    async def _put(self, ctx: ResourceContext, name: str, props: dict[str, Any]) -> Made:
        await ctx.services.call("monitoring", "PutMetricAlarm", {**props, "AlarmName": name})
        arn = f"arn:aws:cloudwatch:{ctx.region}:{ctx.account}:alarm:{name}"
        return Made(name, {"Arn": arn})

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        await ctx.services.call("monitoring", "DeleteAlarms", {"AlarmNames": [current.physical_id]})


class Buckets(Protocol):
    """The embedded S3 store's bucket calls (objectstore.store.ObjectStore)."""

    def create_bucket(self, name: str, region: str = ...) -> Any: ...
    def delete_bucket(self, name: str) -> None: ...
    def get_bytes(self, bucket: str, key: str) -> bytes: ...


class BucketType(Provider):
    type_name = "AWS::S3::Bucket"
    name_property = "BucketName"
    replaced_by = frozenset({"BucketName"})

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        name = self.physical_name(ctx, props, BUCKET_NAME_LIMIT, lower=True)
        await asyncio.to_thread(self.buckets.create_bucket, name, ctx.region)
        return Made(name, {
            "Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{ctx.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.amazonaws.com",
        })

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self.buckets.delete_bucket, current.physical_id)
        except NotFoundError:
            pass


class CdkMetadataType(Provider):
    type_name = "AWS::CDK::Metadata"

    async def create(self, ctx: ResourceContext, props: dict[str, Any]) -> Made:
        return Made(str(uuid.uuid4()))

    def needs_replacement(self, old: Any, new: Any) -> bool:
        return False

    async def delete(self, ctx: ResourceContext, current: Made, props: dict[str, Any]) -> None:
        return None
