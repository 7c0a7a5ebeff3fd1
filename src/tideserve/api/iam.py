"""AWS IAM, as far as SageMaker clients need it: GetRole.

tideserve has no IAM: it does not keep roles, and nothing it does is authorised by one (any
valid key may call any operation). A SageMaker model still names an execution role, and SDKs
resolve one with GetRole, so every well-formed role name is answered as a role SageMaker may
assume: path `/`, `arn:aws:iam::<account>:role/<name>`, a stable `AROA…` id, created when the
server's state was. A malformed name (not 1-64 of `[\\w+=,.@-]`) is IAM's own answer,
400 ValidationError, from the shape check at the edge; NoSuchEntity is never returned, since
no name is missing from an IAM that is not there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tideserve.api.sts import unique_id

# SageMaker's own trust policy, URL-encoded as IAM returns policy documents.
_TRUST_POLICY = quote(json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}, separators=(",", ":")))
_DESCRIPTION = "tideserve has no IAM: every well-formed role name is a role SageMaker may assume"


class IdentityAndAccess:
    def __init__(self, account: str, created: Callable[[], float | None]) -> None:
        self.account = account
        self.created = created  # epoch seconds the server's state was made, for CreateDate

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetRole": self.get_role}

    def get_role(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["RoleName"]
        return {"Role": {
            "Path": "/",
            "RoleName": name,
            "RoleId": unique_id("AROA", name),
            "Arn": f"arn:aws:iam::{self.account}:role/{name}",
            "CreateDate": datetime.fromtimestamp(self.created() or 0, tz=UTC),
            "AssumeRolePolicyDocument": _TRUST_POLICY,
            "Description": _DESCRIPTION,
            "MaxSessionDuration": 3600,
        }}
