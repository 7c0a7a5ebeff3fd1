"""The policies `tideserve keys create --policy` names, as IAM policy documents.

    admin        every action on every resource (the first key's user has this)
    read-only    Describe/List/Get across the services tideserve serves, and LookupEvents
    invoke-only  sagemaker:InvokeEndpoint (and its Async and response-stream forms) on the
                 named endpoints, or on every endpoint when none is named
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

PRESETS = ("admin", "read-only", "invoke-only")
_READ_ONLY_ACTIONS = [
    f"{service}:{verb}*"
    for service in ("sagemaker", "cloudwatch", "application-autoscaling", "logs", "ce")
    for verb in ("Describe", "List", "Get")
] + ["s3:Get*", "s3:List*", "cloudtrail:LookupEvents", "cloudtrail:Get*", "iam:Get*",
     "iam:List*"]
_INVOKE_ACTIONS = ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync",
                   "sagemaker:InvokeEndpointWithResponseStream"]


def preset_policy(name: str, endpoints: Sequence[str] = ()) -> str:
    """The document for preset `name`; endpoints narrow invoke-only (names, any case)."""
    statement: dict[str, Any]
    if name == "admin":
        statement = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    elif name == "read-only":
        statement = {"Effect": "Allow", "Action": _READ_ONLY_ACTIONS, "Resource": "*"}
    elif name == "invoke-only":
        # SageMaker ARNs carry the name lower-cased; region and account are left open.
        resources = [f"arn:aws:sagemaker:*:*:endpoint/{e.lower()}" for e in endpoints] \
            or ["arn:aws:sagemaker:*:*:endpoint/*"]
        statement = {"Effect": "Allow", "Action": _INVOKE_ACTIONS, "Resource": resources}
    else:
        raise ValueError(f"unknown policy preset {name!r}; expected one of {', '.join(PRESETS)}")
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
