"""What a budget action does to tideserve resources, and the trail it leaves.

AWS's ActionType values, mapped (the wire enums are AWS's and unchanged):
    RUN_SSM_DOCUMENTS  SsmActionDefinition.InstanceIds name tideserve resources (the
                       InstanceId pattern admits SageMaker names). Each name is, in order of
                       lookup: an endpoint -> every instance variant scaled to its minimum
                       (the AAS target's MinCapacity, else 1) and every serverless variant's
                       provisioned concurrency set to 0; a transform job -> StopTransformJob;
                       a training job -> StopTrainingJob. ActionSubType (STOP_EC2_INSTANCES |
                       STOP_RDS_INSTANCES) is accepted and does not change the meaning.
                       REVERSE restores the capacities the action changed (stopped jobs stay
                       stopped).
    APPLY_SCP_POLICY   refuse new endpoints: while the action is executed, CreateEndpoint of an
                       endpoint whose tags match the budget's TagKeyValue filters (every
                       endpoint, if it has none) fails with AccessDeniedException. REVERSE
                       lifts it.
    APPLY_IAM_POLICY   recorded only (state, history, notification): tideserve has no managed
                       IAM policies to attach.
Every call an action makes is recorded in the CloudTrail trail under the AWS Budgets service
identity (invokedBy budgets.amazonaws.com), refusals with their error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from tideserve.api.ports import ApiCall, AuditPort
from tideserve.errors import TideserveError

BUDGETS_PRINCIPAL: Final = "budgets.amazonaws.com"
ROLE_NAME: Final = "AWSBudgetsActionsRole"  # what the action's ExecutionRoleArn names


class CapacityPort(Protocol):
    def capacity(self, resource_id: str) -> Any: ...
    def set_desired_capacity(self, resource_id: str, n: int) -> None: ...


@dataclass
class Targets:
    """How effects find and act on resources (wired in budgets_wiring.py)."""

    capacity: CapacityPort
    # endpoint name -> [(variant, is serverless)]; None: no such endpoint
    variants_of: Callable[[str], list[tuple[str, bool]] | None]
    min_capacity: Callable[[str], int | None]  # AAS resource id -> MinCapacity
    stop_transform_job: Callable[[str], bool]  # False: no such job
    stop_training_job: Callable[[str], bool]
    refusals: dict[str, dict[str, str]] = field(default_factory=dict)  # action id -> tag filter


def budgets_identity(account: str) -> dict[str, Any]:
    role_arn = f"arn:aws:iam::{account}:role/{ROLE_NAME}"
    role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, role_arn).hex.upper()[:17]
    return {"type": "AssumedRole", "principalId": f"{role_id}:BudgetsAction",
            "arn": f"arn:aws:sts::{account}:assumed-role/{ROLE_NAME}/BudgetsAction",
            "accountId": account, "invokedBy": BUDGETS_PRINCIPAL,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
                                                 "arn": role_arn, "accountId": account,
                                                 "userName": ROLE_NAME}}}


class Effects:
    def __init__(self, targets: Targets, audit: AuditPort | None, account: str,
                 region: str) -> None:
        self.targets, self.audit, self.region = targets, audit, region
        self.identity = budgets_identity(account)

    def execute(self, action: Mapping[str, Any],
                tag_filters: list[str]) -> tuple[str, dict[str, int]]:
        """Do what the action says; (message, undo record). Raises TideserveError when any
        part failed (the parts before it stay done, as AWS's are)."""
        kind = action["ActionType"]
        if kind == "APPLY_SCP_POLICY":
            pairs: dict[str, str] = {}
            for v in tag_filters:  # user:<key>$<value>
                key, _, value = v[5:].partition("$")
                pairs[key] = value
            self.targets.refusals[action["ActionId"]] = pairs
            return (f"new endpoints refused for tags {pairs or 'any'}", {})
        if kind == "APPLY_IAM_POLICY":
            return ("recorded: tideserve attaches no managed IAM policies", {})
        done: list[str] = []
        undo: dict[str, int] = {}
        for name in action["Definition"]["SsmActionDefinition"]["InstanceIds"]:
            message, previous = self._stop(name)
            done.append(message)
            undo.update(previous)
        return ("; ".join(done), undo)

    def reverse(self, action: Mapping[str, Any], undo: Mapping[str, int]) -> str:
        self.targets.refusals.pop(action["ActionId"], None)
        for key, n in undo.items():
            resource_id, _, kind = key.partition("#")
            self._set(resource_id, n, kind == "serverless")
        return f"restored {len(undo)} capacities" if undo else "lifted"

    def refused(self, tags: Mapping[str, str]) -> bool:
        """Whether a new endpoint with these tags is refused by an executed SCP action."""
        return any(all(tags.get(k) == v for k, v in pairs.items()) if pairs else True
                   for pairs in self.targets.refusals.values())

    def _stop(self, name: str) -> tuple[str, dict[str, int]]:
        variants = self.targets.variants_of(name)
        if variants is not None:
            previous = {}
            for variant, serverless in variants:
                rid = f"endpoint/{name}/variant/{variant}"
                now = self.targets.capacity.capacity(rid)
                floor = 0 if serverless else (self.targets.min_capacity(rid) or 1)
                if now is not None and now.desired > floor:
                    self._set(rid, floor, serverless)
                    previous[rid if not serverless else f"{rid}#serverless"] = int(now.desired)
            return (f"endpoint {name}: {len(previous)} variant(s) scaled to their minimum",
                    previous)
        if self._job("StopTransformJob", "TransformJobName", name,
                     self.targets.stop_transform_job):
            return (f"transform job {name} stopped", {})
        if self._job("StopTrainingJob", "TrainingJobName", name, self.targets.stop_training_job):
            return (f"training job {name} stopped", {})
        raise TideserveError(f"{name} is no endpoint, transform job or training job",
                             code="NotFoundException")

    def _set(self, resource_id: str, n: int, serverless: bool = False) -> None:
        parts = resource_id.split("/")  # endpoint/<ep>/variant/<v>
        wanted: dict[str, Any] = {"VariantName": parts[3]}
        if serverless:
            wanted["ServerlessUpdateConfig"] = {"ProvisionedConcurrency": n}
        else:
            wanted["DesiredInstanceCount"] = n
        params = {"EndpointName": parts[1], "DesiredWeightsAndCapacities": [wanted]}
        self._call("UpdateEndpointWeightsAndCapacities", params,
                   lambda: self.targets.capacity.set_desired_capacity(resource_id, n))

    def _job(self, operation: str, member: str, name: str, stop: Callable[[str], bool]) -> bool:
        found = [False]

        def run() -> None:
            found[0] = stop(name)

        self._call(operation, {member: name}, run, record_missing=False, found=found)
        return found[0]

    def _call(self, operation: str, params: dict[str, Any], run: Callable[[], None],
              record_missing: bool = True, found: list[bool] | None = None) -> None:
        try:
            run()
        except TideserveError as exc:
            self._record(operation, params, exc.code or "ValidationException", exc.message)
            raise
        if found is None or found[0]:
            self._record(operation, params)

    def _record(self, operation: str, params: dict[str, Any], code: str | None = None,
                message: str | None = None) -> None:
        if self.audit is not None:
            self.audit.record(ApiCall("sagemaker", operation, self.identity, params, None, code,
                                      message, str(uuid.uuid4()), BUDGETS_PRINCIPAL,
                                      BUDGETS_PRINCIPAL, self.region))
