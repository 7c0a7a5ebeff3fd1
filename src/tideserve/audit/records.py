"""A CloudTrail event record from one API call (CloudTrail User Guide, record contents). Pure.

What is left out, and why:
- payloads: an InvokeEndpoint or PutObject body is never a request parameter (AWS does not log
  InvokeEndpoint's parameters, and S3 never logs object bodies);
- secrets: any member named like a secret or password becomes
  `HIDDEN_DUE_TO_SECURITY_REASONS` in requests and is dropped from responses (CreateAccessKey's
  SecretAccessKey), and a container's `Environment` values are hidden, as they carry keys;
- read-only calls (Describe/List/Get) have `responseElements: null`, as on AWS; refused calls
  (AccessDenied) have `requestParameters: null`.

Keys are AWS's member names with the first letter lowered (`endpointName`); timestamps are
ISO-8601 UTC with second precision.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tideserve.api.ports import ApiCall

EVENT_VERSION = "1.08"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
GLOBAL_REGION = "us-east-1"  # IAM's events are recorded there
_SECRET = re.compile(r"secret|password", re.IGNORECASE)
_PAYLOADS = frozenset({"Body"})
_READ_ONLY = ("Describe", "List", "Get", "Lookup", "Head", "BatchGet", "Search")
_MAX_FIELD = 1024
_MAX_PARAMETERS = 100 * 1024
# Parameter -> CloudTrail resource type, for `resources` and LookupEvents' ResourceName.
_RESOURCE_PARAMS = {
    "EndpointName": "AWS::SageMaker::Endpoint",
    "EndpointConfigName": "AWS::SageMaker::EndpointConfig",
    "ModelName": "AWS::SageMaker::Model",
    "TransformJobName": "AWS::SageMaker::TransformJob",
    "TrainingJobName": "AWS::SageMaker::TrainingJob",
    "InferenceRecommendationsJobName": "AWS::SageMaker::InferenceRecommendationsJob",
    "ContextName": "AWS::SageMaker::Context",
    "UserName": "AWS::IAM::User",
    "AccessKeyId": "AWS::IAM::AccessKey",
    "RoleName": "AWS::IAM::Role",
    "AlarmName": "AWS::CloudWatch::Alarm",
    "ResourceId": "AWS::ApplicationAutoScaling::ScalableTarget",
    "Bucket": "AWS::S3::Bucket",
    "Key": "AWS::S3::Object",
    "logGroupName": "AWS::Logs::LogGroup",
}
_SOURCE_NAMES = {"sagemaker-runtime": "sagemaker"}  # the data plane's events are SageMaker's


@dataclass(frozen=True)
class Resource:
    type: str
    name: str


def event_source(service: str) -> str:
    return f"{_SOURCE_NAMES.get(service, service)}.amazonaws.com"


def is_read_only(operation: str) -> bool:
    return operation.startswith(_READ_ONLY)


def is_data_event(call: ApiCall) -> bool:
    """InvokeEndpoint and S3 object calls are data events on AWS; the rest management."""
    return call.service == "sagemaker-runtime" or (call.service == "s3" and "Key" in call.params)


def resources(call: ApiCall) -> list[Resource]:
    found: list[Resource] = []
    for name, value in call.params.items():
        kind = _RESOURCE_PARAMS.get(name)
        if kind is not None and isinstance(value, str) and value:
            found.append(Resource(kind, value))
        elif name == "AlarmNames" and isinstance(value, list):
            found += [Resource("AWS::CloudWatch::Alarm", str(v)) for v in value]
    return found


def build_record(call: ApiCall, event_id: str, now: float, account: str) -> dict[str, Any]:
    read_only = is_read_only(call.operation)
    data = is_data_event(call)
    denied = call.error_code in ("AccessDenied", "AccessDeniedException")
    parameters = None if denied or call.service == "sagemaker-runtime" \
        else _clean(call.params, request=True)
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": dict(call.user_identity or {"type": "Unknown"}),
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "eventSource": event_source(call.service),
        "eventName": call.operation,
        "awsRegion": GLOBAL_REGION if call.service == "iam" else call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent[:_MAX_FIELD],
    }
    if call.error_code is not None:
        record["errorCode"] = call.error_code[:_MAX_FIELD]
        record["errorMessage"] = (call.error_message or "")[:_MAX_FIELD]
    if parameters is not None and len(json.dumps(parameters)) > _MAX_PARAMETERS:
        parameters = None
        record["additionalEventData"] = {"requestParametersTruncated": True}
    record["requestParameters"] = parameters
    record["responseElements"] = (
        None if read_only or call.result is None or call.error_code is not None
        else _clean(call.result, request=False) or None)
    record.update({
        "requestID": call.request_id,
        "eventID": event_id,
        "readOnly": read_only,
        "resources": [{"type": r.type, "ARN": r.name, "accountId": account}
                      for r in resources(call)] or None,
        "eventType": "AwsApiCall",
        "managementEvent": not data,
        "recipientAccountId": account,
        "eventCategory": "Data" if data else "Management",
    })
    if record["resources"] is None:
        del record["resources"]
    return record


def username(identity: Mapping[str, Any] | None) -> str | None:
    """Event history's "User name": the IAM user's name; for an assumed role, the session."""
    if not identity:
        return None
    if identity.get("type") == "AssumedRole":
        return str(identity.get("arn", "")).rsplit("/", 1)[-1] or None
    name = identity.get("userName")
    return str(name) if name else None


def _clean(value: Any, request: bool) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in _PAYLOADS or item is None:
                continue
            if _SECRET.search(name):
                if request:
                    out[_lower_camel(name)] = HIDDEN
                continue
            if name == "Environment" and isinstance(item, Mapping):
                out["environment"] = {k: HIDDEN for k in item}
                continue
            cleaned = _clean(item, request)
            if cleaned is not None:
                out[_lower_camel(name)] = cleaned
        return out
    if isinstance(value, list | tuple):
        return [_clean(v, request) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]
