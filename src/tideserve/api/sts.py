"""AWS STS, as far as a client needs it to learn who it is: GetCallerIdentity.

SDKs ask it first (the SageMaker Python SDK for the account of its default bucket,
`aws sts get-caller-identity` to check a setup). tideserve's keys belong to users of one
account (`--account`, default 123456789012): the answer names the user the signing key was
issued to, `arn:aws:iam::<account>:user/<name>`. UserId is a stable IAM-style unique id
(AIDA + 17 characters) derived from the user name, as AWS gives each user one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from tideserve.api.rpc import CallerHandler
from tideserve.api.sigv4 import Identity
from tideserve.errors import AuthError


def unique_id(prefix: str, name: str) -> str:
    """An IAM unique id (`AIDA…` user, `AROA…` role): 21 upper-case characters, stable."""
    digest = hashlib.sha256(name.encode()).hexdigest().upper()
    return prefix + digest[:21 - len(prefix)]


class SecurityTokenService:
    def __init__(self, account: str, user_of: Callable[[str], str | None]) -> None:
        self.account = account
        self.user_of = user_of  # access key id -> user name

    def operations(self) -> dict[str, CallerHandler]:
        return {"GetCallerIdentity": self.get_caller_identity}

    def get_caller_identity(self, params: dict[str, Any], caller: Identity) -> dict[str, Any]:
        user = self.user_of(caller.access_key_id)
        if user is None:  # the key was verified a moment ago; it has just been removed
            raise AuthError("The security token included in the request is invalid.",
                            code="UnrecognizedClientException")
        return {
            "UserId": unique_id("AIDA", user),
            "Account": self.account,
            "Arn": f"arn:aws:iam::{self.account}:user/{user}",
        }
