"""Calls Application Auto Scaling makes on the user's behalf, in the trail as AWS shows them:
UpdateEndpointWeightsAndCapacities in SageMaker's event stream, made by AAS's service-linked
role (userIdentity AssumedRole, invokedBy / sourceIPAddress / userAgent the service principal).

`AuditedCapacity` wraps the capacity port the scaling driver drives, so every capacity it
sets is recorded (refusals with their error) before the driver learns the outcome.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from tideserve.api.ports import ApiCall, AuditPort
from tideserve.errors import TideserveError

AAS_PRINCIPAL = "sagemaker.application-autoscaling.amazonaws.com"
ROLE_NAME = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
SESSION = "AutoScaling-UpdateDesiredCapacity"


class CapacityPort(Protocol):
    def capacity(self, resource_id: str) -> Any: ...
    def set_desired_capacity(self, resource_id: str, n: int) -> None: ...


def service_identity(account: str) -> dict[str, Any]:
    role_arn = f"arn:aws:iam::{account}:role/aws-service-role/{AAS_PRINCIPAL}/{ROLE_NAME}"
    role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, role_arn).hex.upper()[:17]
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{SESSION}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{ROLE_NAME}/{SESSION}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn,
                              "accountId": account, "userName": ROLE_NAME},
            "attributes": {"mfaAuthenticated": "false"},
        },
        "invokedBy": AAS_PRINCIPAL,
    }


class AuditedCapacity:
    def __init__(self, inner: CapacityPort, audit: AuditPort, account: str, region: str) -> None:
        self.inner = inner
        self.audit = audit
        self.identity = service_identity(account)
        self.region = region

    def capacity(self, resource_id: str) -> Any:
        return self.inner.capacity(resource_id)

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        parts = resource_id.split("/")  # endpoint/<ep>/variant/<v>
        params = {"EndpointName": parts[1] if len(parts) > 1 else resource_id,
                  "DesiredWeightsAndCapacities": [
                      {"VariantName": parts[3] if len(parts) > 3 else "",
                       "DesiredInstanceCount": n}]}
        try:
            self.inner.set_desired_capacity(resource_id, n)
        except TideserveError as exc:
            self._record(params, code=exc.code or "ValidationException", message=exc.message)
            raise
        self._record(params)

    def _record(self, params: dict[str, Any], code: str | None = None,
                message: str | None = None) -> None:
        self.audit.record(ApiCall(
            "sagemaker", "UpdateEndpointWeightsAndCapacities", self.identity, params, None,
            code, message, str(uuid.uuid4()), AAS_PRINCIPAL, AAS_PRINCIPAL, self.region))
