"""Which IAM actions on which resource ARNs an API call needs (the spec's action map, §3.7,
after the SageMaker Developer Guide's API permissions reference). Pure: (service, operation,
parameters) in, a tuple of (action, ARN) out.

    sagemaker     sagemaker:<Op> on the ARN of the resource the call names, name lower-cased
                  as SageMaker writes ARNs (CreateEndpoint: the endpoint and its config;
                  CreateModel: also iam:PassRole on the execution role); List*: "*"
    runtime       sagemaker:InvokeEndpoint / InvokeEndpointAsync on endpoint/<name>
    application-autoscaling, ce, cloudtrail   <prefix>:<Op> on "*"
    monitoring    cloudwatch:<Op>; alarm calls on arn:aws:cloudwatch:<r>:<a>:alarm:<name>
    logs          logs:<Op> on the log group ARN (`...:log-group:<g>:*`), a stream for
                  GetLogEvents
    iam           iam:<Op> on the user (the caller's own when UserName is left out) or role
    s3            s3:GetObject/PutObject/DeleteObject... on arn:aws:s3:::<bucket>/<key>,
                  s3:ListBucket (and bucket calls) on arn:aws:s3:::<bucket>
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Needs = tuple[tuple[str, str], ...]
RUNTIME = "sagemaker-runtime"  # the label the data plane authorises under

_IAM_PREFIX = {"monitoring": "cloudwatch"}  # signing name -> IAM action prefix, where they differ
_NOUN = re.compile(r"^(?:Create|Describe|Delete|Update|Stop|Start|List|Get|Put)(\w+?)s?$")
_KEBAB = re.compile(r"(?<!^)(?=[A-Z])")
# SageMaker names whose ARN type is not the kebab-cased parameter noun.
_SAGEMAKER_TYPES = {"EndpointConfig": "endpoint-config", "Context": "context"}
_S3_ACTIONS = {
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
    "ListObjects": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket", "DeleteBucket": "s3:DeleteBucket",
    "GetBucketLocation": "s3:GetBucketLocation", "ListBuckets": "s3:ListAllMyBuckets",
}
_S3_BUCKET_LEVEL = frozenset({"ListObjects", "ListObjectsV2", "HeadBucket", "CreateBucket",
                              "DeleteBucket", "GetBucketLocation"})


@dataclass(frozen=True)
class Account:
    region: str
    account: str
    user_arn: Callable[[str], str]  # IAM user name -> its ARN (with its path)

    def sagemaker(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"


def needs(account: Account, service: str, operation: str, params: Mapping[str, Any],
          caller_user: str) -> Needs:
    """The (action, resource) pairs `operation` of `service` (a SigV4 signing name, RUNTIME or
    "s3") needs with these parameters, for a caller who is IAM user `caller_user`."""
    if service == "sagemaker":
        return _sagemaker(account, operation, params)
    if service == RUNTIME:
        return ((f"sagemaker:{operation}", account.sagemaker("endpoint", params["EndpointName"])),)
    if service == "s3":
        return _s3(operation, params)
    action = f"{_IAM_PREFIX.get(service, service)}:{operation}"
    if service == "monitoring":
        return _alarms(account, action, params)
    if service == "iam":
        return ((action, _iam_resource(account, operation, params, caller_user)),)
    if service == "logs":
        return ((action, _log_resource(account, params)),)
    return ((action, "*"),)


def sagemaker_type(noun: str) -> str:
    return _SAGEMAKER_TYPES.get(noun) or _KEBAB.sub("-", noun).lower()


def _sagemaker(account: Account, operation: str, params: Mapping[str, Any]) -> Needs:
    action = f"sagemaker:{operation}"
    if operation in ("AddTags", "DeleteTags", "ListTags") and "ResourceArn" in params:
        return ((action, str(params["ResourceArn"])),)
    if operation == "UpdateEndpointWeightsAndCapacities":
        return ((action, account.sagemaker("endpoint", params["EndpointName"])),)
    match = _NOUN.match(operation)
    name = params.get(f"{match.group(1)}Name") if match and not operation.startswith("List") \
        else None
    if not isinstance(name, str):
        return ((action, "*"),)
    found = [(action, account.sagemaker(sagemaker_type(match.group(1)), name))]  # type: ignore[union-attr]
    config = params.get("EndpointConfigName")
    if operation in ("CreateEndpoint", "UpdateEndpoint") and isinstance(config, str):
        found.append((action, account.sagemaker("endpoint-config", config)))
    role = params.get("ExecutionRoleArn")
    if operation == "CreateModel" and isinstance(role, str):
        found.append(("iam:PassRole", role))
    return tuple(found)


def _alarms(account: Account, action: str, params: Mapping[str, Any]) -> Needs:
    base = f"arn:aws:cloudwatch:{account.region}:{account.account}:alarm:"
    if isinstance(params.get("AlarmName"), str):
        return ((action, base + params["AlarmName"]),)
    names = params.get("AlarmNames")
    if isinstance(names, list) and names and not action.endswith(":DescribeAlarms"):
        return tuple((action, base + str(n)) for n in names)
    return ((action, "*"),)


def _iam_resource(account: Account, operation: str, params: Mapping[str, Any],
                  caller_user: str) -> str:
    if isinstance(params.get("RoleName"), str):
        return f"arn:aws:iam::{account.account}:role/{params['RoleName']}"
    if operation == "ListUsers":
        return "*"
    user = params.get("UserName")
    return account.user_arn(user if isinstance(user, str) else caller_user)


def _log_resource(account: Account, params: Mapping[str, Any]) -> str:
    base = f"arn:aws:logs:{account.region}:{account.account}:log-group:"
    group = params.get("logGroupName") or params.get("logGroupIdentifier")
    if not isinstance(group, str):
        return base + "*"
    stream = params.get("logStreamName")
    if isinstance(stream, str):
        return f"{base}{group}:log-stream:{stream}"
    return f"{base}{group}:*"


def _s3(operation: str, params: Mapping[str, Any]) -> Needs:
    action = _S3_ACTIONS.get(operation, f"s3:{operation}")
    bucket = params.get("Bucket") or ""
    if not bucket:
        return ((action, "*"),)
    if operation in _S3_BUCKET_LEVEL:
        return ((action, f"arn:aws:s3:::{bucket}"),)
    key = params.get("Key") or "*"
    return ((action, f"arn:aws:s3:::{bucket}/{key}"),)
