"""Stack records in the shapes DescribeStacks, DescribeStackEvents, DescribeStackResources and
ListStacks return."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tideserve.stacks.evaluate import shown_parameters
from tideserve.stacks.store import ChangeSetRecord, ResourceRecord, StackRecord
from tideserve.stacks.template import parse_template


def when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def stack_view(stack: StackRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "StackId": stack.stack_id, "StackName": stack.name,
        "CreationTime": when(stack.created), "StackStatus": stack.status,
        "DisableRollback": stack.disable_rollback, "NotificationARNs": [],
        "Capabilities": stack.capabilities, "Tags": stack.tags, "Outputs": stack.outputs,
        "Parameters": _parameters(stack), "EnableTerminationProtection": False,
        "RollbackConfiguration": {}, "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
    }
    for key, value in (("ChangeSetId", stack.change_set_id),
                       ("Description", stack.description),
                       ("StackStatusReason", stack.reason)):
        if value:
            view[key] = value
    if stack.updated is not None:
        view["LastUpdatedTime"] = when(stack.updated)
    if stack.deleted_at is not None:
        view["DeletionTime"] = when(stack.deleted_at)
    return view


def _parameters(stack: StackRecord) -> list[dict[str, Any]]:
    if not stack.template_text:
        return []
    return shown_parameters(parse_template(stack.template_text), stack.parameters,
                            stack.resolved)


def summary_view(stack: StackRecord) -> dict[str, Any]:
    view = {k: v for k, v in stack_view(stack).items() if k in (
        "StackId", "StackName", "CreationTime", "LastUpdatedTime", "DeletionTime",
        "StackStatus", "StackStatusReason", "DriftInformation")}
    if stack.description:
        view["TemplateDescription"] = stack.description
    return view


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "Timestamp": when(event["Timestamp"])}


def resource_view(stack: StackRecord, res: ResourceRecord, detail: bool = False
                  ) -> dict[str, Any]:
    view: dict[str, Any] = {"StackName": stack.name, "StackId": stack.stack_id,
                            "LogicalResourceId": res.logical_id, "ResourceType": res.type,
                            "Timestamp": when(res.updated), "ResourceStatus": res.status,
                            "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
    if res.physical_id:
        view["PhysicalResourceId"] = res.physical_id
    if res.reason:
        view["ResourceStatusReason"] = res.reason
    if detail:
        view["LastUpdatedTimestamp"] = view.pop("Timestamp")
        view["Metadata"] = "{}"
    return view


def resource_summary(res: ResourceRecord) -> dict[str, Any]:
    view: dict[str, Any] = {"LogicalResourceId": res.logical_id, "ResourceType": res.type,
                            "LastUpdatedTimestamp": when(res.updated),
                            "ResourceStatus": res.status,
                            "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
    if res.physical_id:
        view["PhysicalResourceId"] = res.physical_id
    if res.reason:
        view["ResourceStatusReason"] = res.reason
    return view


def change_set_view(cs: ChangeSetRecord) -> dict[str, Any]:
    view: dict[str, Any] = {
        "ChangeSetName": cs.name, "ChangeSetId": cs.change_set_id, "StackId": cs.stack_id,
        "StackName": cs.stack_name, "CreationTime": when(cs.created),
        "ExecutionStatus": cs.execution_status, "Status": cs.status,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                       for k, v in cs.parameters.items()],
        "NotificationARNs": [], "RollbackConfiguration": {}, "Capabilities": cs.capabilities,
        "Tags": cs.tags, "Changes": cs.changes, "IncludeNestedStacks": False,
    }
    if cs.description:
        view["Description"] = cs.description
    if cs.reason:
        view["StatusReason"] = cs.reason
    return view


def change_set_summary(cs: ChangeSetRecord) -> dict[str, Any]:
    view = change_set_view(cs)
    return {k: v for k, v in view.items() if k in (
        "StackId", "StackName", "ChangeSetId", "ChangeSetName", "ExecutionStatus", "Status",
        "StatusReason", "CreationTime", "Description", "IncludeNestedStacks")}
