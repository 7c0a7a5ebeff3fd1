"""AWS STS, as far as a client needs it to learn who it is: GetCallerIdentity.

SDKs ask it first (the SageMaker Python SDK for the account of its default bucket,
`aws sts get-caller-identity` to check a setup). tideserve's keys belong to users of one
account (`--account`, default 123456789012): the answer names the user the signing key was
issued to, `arn:aws:iam::<account>:user/<path><name>`, and its IAM unique id (AIDA + 17
characters). No permission is needed, and no policy can deny it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tideserve.api.rpc import CallerHandler
from tideserve.api.sigv4 import Identity
from tideserve.errors import AuthError


class SecurityTokenService:
    def __init__(self, account: str, principal_of: Callable[[str], tuple[str, str] | None]
                 ) -> None:
        self.account = account
        self.principal_of = principal_of  # access key id -> (user id, user ARN)

    def operations(self) -> dict[str, CallerHandler]:
        return {"GetCallerIdentity": self.get_caller_identity}

    def get_caller_identity(self, params: dict[str, Any], caller: Identity) -> dict[str, Any]:
        found = self.principal_of(caller.access_key_id)
        if found is None:  # the key was verified a moment ago; it has just been removed
            raise AuthError("The security token included in the request is invalid.",
                            code="UnrecognizedClientException")
        user_id, arn = found
        return {"UserId": user_id, "Account": self.account, "Arn": arn}
