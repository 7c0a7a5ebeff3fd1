"""Which credential scopes a tideserve server accepts (AWS SigV4 `YYYYMMDD/region/service/`).

AWS knows which service a request is for from its host name, and refuses a signature scoped
to another service or region. tideserve serves every API on one port, so:

- service: the data-plane routes (InvokeEndpoint…) must be signed as `sagemaker`, the S3 API
  as `s3`; an RPC request is dispatched to the API its scope names and must then call an
  operation of that API (its X-Amz-Target prefix, RPC v2 path or Query action is looked up
  in that service's model only), so a scope can never reach another service's operations.
  Signing names are botocore's: a model's `signingName`, else its `endpointPrefix`
  (CloudWatch signs as `monitoring`).
- region: one of the server's regions (`--region`, default us-east-1, plus
  `--allowed-regions`). A global service (IAM, STS, Cost Explorer, Budgets… — botocore's
  endpoints.json marks them `isRegionalized: false` or with a partition endpoint) is signed
  for us-east-1 by SDKs that resolve AWS's own endpoint, so that region is accepted for them
  too.
"""

from __future__ import annotations

import functools
from collections.abc import Collection

import botocore.session

# Where AWS's global endpoints put their credential scope (endpoints.json: aws-global).
GLOBAL_SCOPE_REGION = "us-east-1"


def signing_name(botocore_service: str) -> str:
    """The SigV4 service name a botocore client of `botocore_service` signs with."""
    loader = botocore.session.get_session().get_component("data_loader")
    metadata = loader.load_service_model(botocore_service, "service-2")["metadata"]
    return str(metadata.get("signingName") or metadata["endpointPrefix"])


@functools.cache
def global_services() -> frozenset[str]:
    """Endpoint prefixes of the services AWS serves from one global endpoint."""
    loader = botocore.session.get_session().get_component("data_loader")
    partitions = loader.load_data("endpoints")["partitions"]
    aws = next(p for p in partitions if p["partition"] == "aws")
    return frozenset(
        name
        for name, service in aws["services"].items()
        if service.get("isRegionalized") is False
        or (service.get("partitionEndpoint") == "aws-global" and name != "s3")
    )


def region_allowed(region: str, service: str, regions: Collection[str]) -> bool:
    if region in regions:
        return True
    return region == GLOBAL_SCOPE_REGION and service in global_services()
