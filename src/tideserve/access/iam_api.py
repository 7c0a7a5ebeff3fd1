"""The `iam` API subset tideserve serves (query protocol; shapes from botocore's model): users,
access keys, inline user policies, and GetRole.

Codes are IAM's: NoSuchEntity 404, EntityAlreadyExists 409, LimitExceeded 409 (a third key:
"Cannot exceed quota for AccessKeysPerUser: 2"), DeleteConflict 409, MalformedPolicyDocument
400. Policy documents are returned URL-encoded, as IAM returns them (botocore decodes them into
a dict). The secret of a key is in CreateAccessKey's answer and nowhere else.

Roles: tideserve keeps none and authorises nothing by one, but a SageMaker model names an
execution role and SDKs resolve it with GetRole, so every well-formed role name is answered as
a role SageMaker may assume (path `/`, a stable `AROA…` id, created when the server's state was).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from tideserve.access.directory import AccessKey, Directory, User
from tideserve.clock import Clock
from tideserve.errors import ValidationError

_TRUST_POLICY = quote(json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}, separators=(",", ":")))
_DESCRIPTION = "tideserve keeps no roles: any well-formed role name is a role SageMaker may assume"


class Caller(Protocol):
    @property
    def access_key_id(self) -> str: ...


Handler = Callable[[dict[str, Any], Caller], "dict[str, Any] | None"]


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _user(user: User) -> dict[str, Any]:
    return {"Path": user.path, "UserName": user.name, "UserId": user.user_id, "Arn": user.arn,
            "CreateDate": _when(user.create_date)}


def _key(key: AccessKey) -> dict[str, Any]:
    return {"UserName": key.user, "AccessKeyId": key.access_key_id, "Status": key.status,
            "CreateDate": _when(key.create_date)}


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """IAM's Marker/MaxItems paging (default 100 items); the marker is the next index."""
    start = 0
    if params.get("Marker"):
        try:
            start = int(params["Marker"])
        except ValueError as exc:
            raise ValidationError("Invalid Marker.", code="InvalidInput") from exc
    size = int(params.get("MaxItems") or 100)
    chunk = items[start:start + size]
    more = start + size < len(items)
    return chunk, ({"IsTruncated": True, "Marker": str(start + size)} if more
                   else {"IsTruncated": False})


class IdentityAndAccess:
    def __init__(self, directory: Directory, clock: Clock,
                 created: Callable[[], float | None]) -> None:
        self.directory = directory
        self.clock = clock
        self.created = created  # epoch seconds the server's state was made (roles' CreateDate)

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateUser": self.create_user, "GetUser": self.get_user,
            "ListUsers": self.list_users, "DeleteUser": self.delete_user,
            "CreateAccessKey": self.create_access_key, "ListAccessKeys": self.list_access_keys,
            "UpdateAccessKey": self.update_access_key, "DeleteAccessKey": self.delete_access_key,
            "PutUserPolicy": self.put_user_policy, "GetUserPolicy": self.get_user_policy,
            "ListUserPolicies": self.list_user_policies,
            "DeleteUserPolicy": self.delete_user_policy, "GetRole": self.get_role,
        }

    def _named_or_caller(self, params: dict[str, Any], caller: Caller) -> str:
        """The UserName given, else the user owning the signing key (IAM's default)."""
        if params.get("UserName"):
            return str(params["UserName"])
        owner = self.directory.keys.user_of(caller.access_key_id)
        if owner is None:
            raise ValidationError("The caller is not an IAM user.", code="InvalidInput")
        return owner

    def create_user(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        path = params.get("Path") or "/"
        return {"User": _user(self.directory.create_user(params["UserName"], path,
                                                         self.clock.now()))}

    def get_user(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return {"User": _user(self.directory.user(self._named_or_caller(params, caller)))}

    def list_users(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        prefix = params.get("PathPrefix") or "/"
        users = [u for u in self.directory.list_users() if u.path.startswith(prefix)]
        chunk, paging = _page(users, params)
        return {"Users": [_user(u) for u in chunk], **paging}

    def delete_user(self, params: dict[str, Any], caller: Caller) -> None:
        self.directory.delete_user(params["UserName"])

    def create_access_key(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        key, secret = self.directory.create_key(self._named_or_caller(params, caller),
                                                self.clock.now())
        return {"AccessKey": {**_key(key), "SecretAccessKey": secret}}

    def list_access_keys(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        user = self.directory.user(self._named_or_caller(params, caller))
        chunk, paging = _page(self.directory.keys_of(user.name), params)
        return {"AccessKeyMetadata": [_key(k) for k in chunk], **paging}

    def update_access_key(self, params: dict[str, Any], caller: Caller) -> None:
        status = params["Status"]
        if status not in ("Active", "Inactive"):
            raise ValidationError(f"Status {status!r} is not one of Active, Inactive.",
                                  code="InvalidInput")
        self.directory.set_key_status(params["AccessKeyId"], status, params.get("UserName"))

    def delete_access_key(self, params: dict[str, Any], caller: Caller) -> None:
        self.directory.delete_key(params["AccessKeyId"], params.get("UserName"))

    def put_user_policy(self, params: dict[str, Any], caller: Caller) -> None:
        self.directory.put_policy(params["UserName"], params["PolicyName"],
                                  params["PolicyDocument"])

    def get_user_policy(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        user = self.directory.user(params["UserName"])
        document = self.directory.get_policy(user.name, params["PolicyName"])
        return {"UserName": user.name, "PolicyName": params["PolicyName"],
                "PolicyDocument": quote(document, safe="")}

    def list_user_policies(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        user = self.directory.user(params["UserName"])
        chunk, paging = _page(self.directory.policy_names(user.name), params)
        return {"PolicyNames": chunk, **paging}

    def delete_user_policy(self, params: dict[str, Any], caller: Caller) -> None:
        self.directory.delete_policy(params["UserName"], params["PolicyName"])

    def get_role(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        name = params["RoleName"]
        return {"Role": {
            "Path": "/",
            "RoleName": name,
            "RoleId": "AROA" + hashlib.sha256(name.encode()).hexdigest().upper()[:17],
            "Arn": f"arn:aws:iam::{self.directory.account}:role/{name}",
            "CreateDate": _when(self.created() or 0),
            "AssumeRolePolicyDocument": _TRUST_POLICY,
            "Description": _DESCRIPTION,
            "MaxSessionDuration": 3600,
        }}
