"""The stacks' part of `tideserve up`: providers over the server's own services, the engine
and the cloudformation operations, registered on the API registry."""

from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import Engine

from tideserve.api.rpc import OperationRegistry
from tideserve.clock import Clock
from tideserve.errors import ValidationError
from tideserve.stacks.api import CloudFormationApi
from tideserve.stacks.calls import RegistryServices
from tideserve.stacks.engine import StackEngine
from tideserve.stacks.other_types import AlarmType, Buckets, BucketType, CdkMetadataType
from tideserve.stacks.providers import Provider
from tideserve.stacks.sagemaker_types import EndpointConfigType, EndpointType, ModelType
from tideserve.stacks.scaling_types import ScalableTargetType, ScalingPolicyType
from tideserve.stacks.store import StackStore


def providers(buckets: Buckets) -> dict[str, Provider]:
    types: list[Provider] = [ModelType(), EndpointConfigType(), EndpointType(),
                             ScalableTargetType(), ScalingPolicyType(), AlarmType(),
                             BucketType(buckets), CdkMetadataType()]
    return {p.type_name: p for p in types}


def build_stacks(engine: Engine, registry: OperationRegistry, clock: Clock, region: str,
                 account: str, buckets: Buckets) -> CloudFormationApi:
    store = StackStore(engine)
    stack_engine = StackEngine(store, providers(buckets), RegistryServices(registry), clock,
                               region, account)

    def fetch_url(url: str) -> str:
        """A path-style S3 URL (what `aws cloudformation deploy --s3-bucket` passes) read from
        the embedded store."""
        bucket, _, key = urlparse(url).path.lstrip("/").partition("/")
        if not bucket or not key:
            raise ValidationError("TemplateURL must be an Amazon S3 URL.")
        return buckets.get_bytes(bucket, key).decode()

    stack_engine.recover()
    api = CloudFormationApi(store, stack_engine, clock, region, account, fetch_url)
    registry.register_all("cloudformation", api.operations())
    return api
