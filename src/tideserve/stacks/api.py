"""The `cloudformation` API (Query protocol): stacks, change sets, templates, exports. Checks
and planning happen in the request; the resource work runs on the server's loop afterwards
(StackEngine), so a create or delete returns at once as AWS's does."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tideserve.clock import Clock
from tideserve.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from tideserve.stacks import views
from tideserve.stacks.changes import plan_changes
from tideserve.stacks.engine import StackEngine
from tideserve.stacks.evaluate import DEFAULT_SSM, Evaluated, evaluate, pseudo_parameters
from tideserve.stacks.store import ChangeSetRecord, StackRecord, StackStore
from tideserve.stacks.template import parse_template

Operation = Callable[[dict[str, Any]], Any]
_NAME = re.compile(r"^[a-zA-Z][-a-zA-Z0-9]{0,127}$")
UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
                       "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED",
                       "UPDATE_FAILED"})
NO_CHANGES = ("The submitted information didn't contain changes. Submit different information "
              "to create a change set.")


def missing_stack(name: str) -> ValidationError:
    # `aws cloudformation deploy` finds "absent" by exactly this text.
    return ValidationError(f"Stack with id {name} does not exist")


class CloudFormationApi:
    def __init__(self, store: StackStore, engine: StackEngine, clock: Clock, region: str,
                 account: str, fetch_url: Callable[[str], str] | None = None,
                 ssm: Mapping[str, str] = DEFAULT_SSM) -> None:
        self.store = store
        self.engine = engine
        self.clock = clock
        self.region = region
        self.account = account
        self.fetch_url = fetch_url
        self.ssm = ssm
        engine.imports = self.import_value

    def operations(self) -> dict[str, Operation]:
        return {
            "CreateStack": self.create_stack, "UpdateStack": self.update_stack,
            "DeleteStack": self.delete_stack, "DescribeStacks": self.describe_stacks,
            "DescribeStackEvents": self.describe_stack_events,
            "DescribeStackResources": self.describe_stack_resources,
            "DescribeStackResource": self.describe_stack_resource,
            "ListStackResources": self.list_stack_resources, "ListStacks": self.list_stacks,
            "GetTemplate": self.get_template, "GetTemplateSummary": self.get_template_summary,
            "ValidateTemplate": self.validate_template,
            "CreateChangeSet": self.create_change_set,
            "DescribeChangeSet": self.describe_change_set,
            "ExecuteChangeSet": self.execute_change_set,
            "DeleteChangeSet": self.delete_change_set, "ListChangeSets": self.list_change_sets,
            "ListExports": self.list_exports,
        }

    # -- helpers ---------------------------------------------------------------------------

    def _stack(self, name: str) -> StackRecord:
        stack = self.store.stack(name)
        if stack is None:
            raise missing_stack(name)
        return stack

    def _template_text(self, p: dict[str, Any], previous: StackRecord | None = None) -> str:
        if p.get("UsePreviousTemplate"):
            if previous is None or not previous.template_text:
                raise ValidationError("UsePreviousTemplate is only valid for an existing stack")
            return previous.template_text
        if "TemplateBody" in p:
            return str(p["TemplateBody"])
        if "TemplateURL" in p:
            if self.fetch_url is None:
                raise ValidationError("TemplateURL must be an Amazon S3 URL.")
            return self.fetch_url(str(p["TemplateURL"]))
        raise ValidationError("Either Template URL or Template Body must be specified.")

    def _given(self, p: dict[str, Any], previous: StackRecord | None) -> dict[str, str]:
        given = {}
        for entry in p.get("Parameters") or []:
            key = entry["ParameterKey"]
            if entry.get("UsePreviousValue"):
                if previous is None or key not in previous.parameters:
                    raise ValidationError(f"Invalid input for parameter key {key}. Cannot "
                                          "specify usePreviousValue as true for a parameter "
                                          "key not in the previous template")
                given[key] = previous.parameters[key]
            else:
                given[key] = str(entry.get("ParameterValue", ""))
        return given

    def _evaluate(self, text: str, given: dict[str, str], name: str, stack_id: str
                  ) -> Evaluated:
        pseudo = pseudo_parameters(self.region, self.account, name, stack_id)
        return evaluate(parse_template(text), given, pseudo, self.engine.providers, self.ssm)

    def _stack_arn(self, name: str) -> str:
        return (f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{name}/"
                f"{uuid.uuid4()}")

    def _check_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise ValidationError(f"1 validation error detected: Value '{name}' at 'stackName' "
                                  "failed to satisfy constraint: Member must satisfy regular "
                                  "expression pattern: [a-zA-Z][-a-zA-Z0-9]*")

    def _check_updatable(self, stack: StackRecord) -> None:
        if stack.status not in UPDATABLE:
            raise ValidationError(f"Stack:{stack.stack_id} is in {stack.status} state and can "
                                  "not be updated.")

    def import_value(self, name: str) -> str:
        for export in self.list_exports({})["Exports"]:
            if export["Name"] == name:
                return str(export["Value"])
        raise ValidationError(f"No export named {name} found. Rollback requested by user.")

    # -- stacks ----------------------------------------------------------------------------

    async def create_stack(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["StackName"]
        self._check_name(name)
        if self.store.stack(name) is not None:
            raise AlreadyExistsError(f"Stack [{name}] already exists",
                                     code="AlreadyExistsException")
        text = self._template_text(p)
        stack_id = self._stack_arn(name)
        evaluated = self._evaluate(text, self._given(p, None), name, stack_id)
        disable = bool(p.get("DisableRollback")) or p.get("OnFailure") == "DO_NOTHING"
        stack = StackRecord(stack_id, name, "CREATE_IN_PROGRESS", self.clock.now(), text,
                            evaluated.given, evaluated.resolved,
                            description=evaluated.template.description,
                            capabilities=list(p.get("Capabilities") or []),
                            tags=list(p.get("Tags") or []), disable_rollback=disable)
        self.store.put_stack(stack)
        await self.engine.start(lambda: self.engine.create(stack, evaluated))
        return {"StackId": stack_id}

    async def update_stack(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(p["StackName"])
        self._check_updatable(stack)
        text = self._template_text(p, stack)
        evaluated = self._evaluate(text, self._given(p, stack), stack.name, stack.stack_id)
        live = self.store.resources(stack.stack_id)
        if not plan_changes(evaluated, live, self.engine.providers, self.region) and (
                text == stack.template_text and evaluated.given == stack.parameters):
            raise ValidationError("No updates are to be performed.")
        await self._begin_update(stack, evaluated, text, p)
        return {"StackId": stack.stack_id}

    async def _begin_update(self, stack: StackRecord, evaluated: Evaluated, text: str,
                      p: dict[str, Any]) -> None:
        prior = copy.deepcopy(stack)
        previous = self._evaluate(prior.template_text, prior.parameters, stack.name,
                                  stack.stack_id)
        stack.template_text, stack.parameters = text, evaluated.given
        stack.resolved, stack.description = evaluated.resolved, evaluated.template.description
        stack.updated, stack.imports = self.clock.now(), []
        if "DisableRollback" in p:
            stack.disable_rollback = bool(p["DisableRollback"])
        self.store.put_stack(stack)
        await self.engine.start(lambda: self.engine.update(stack, evaluated, previous, prior))

    async def delete_stack(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self.store.stack(p["StackName"])
        if stack is None or stack.status == "DELETE_IN_PROGRESS":
            return {}
        if stack.status.endswith("_IN_PROGRESS") and stack.status != "REVIEW_IN_PROGRESS":
            raise ValidationError(f"Stack [{stack.name}] cannot be deleted while in status "
                                  f"{stack.status}")
        self._check_exports_unused(stack)
        for cs in self.store.change_sets(stack.stack_id):
            self.store.drop_change_set(cs.change_set_id)
        if stack.status == "REVIEW_IN_PROGRESS":
            stack.deleted_at = self.clock.now()
            self.engine.set_status(stack, "DELETE_COMPLETE")
            return {}
        stack.status = "DELETE_IN_PROGRESS"
        self.store.put_stack(stack)
        await self.engine.start(lambda: self.engine.delete(stack))
        return {}

    def _check_exports_unused(self, stack: StackRecord) -> None:
        exported = {o["ExportName"] for o in stack.outputs if o.get("ExportName")}
        for other in self.store.stacks():
            used = exported & set(other.imports)
            if other.stack_id != stack.stack_id and used:
                raise ValidationError(f"Export {sorted(used)[0]} cannot be deleted as it is in "
                                      f"use by {other.name}")

    def describe_stacks(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("StackName"):
            return {"Stacks": [views.stack_view(self._stack(p["StackName"]))]}
        return {"Stacks": [views.stack_view(s) for s in self.store.stacks()]}

    def list_stacks(self, p: dict[str, Any]) -> dict[str, Any]:
        wanted = set(p.get("StackStatusFilter") or [])
        found = [s for s in self.store.stacks(include_deleted=True)
                 if not wanted or s.status in wanted]
        return {"StackSummaries": [views.summary_view(s) for s in reversed(found)]}

    def describe_stack_events(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(p["StackName"])
        return {"StackEvents": [views.event_view(e) for e in self.store.events(stack.stack_id)]}

    def describe_stack_resources(self, p: dict[str, Any]) -> dict[str, Any]:
        if "StackName" not in p:
            raise ValidationError("StackName is required (PhysicalResourceId lookups are not "
                                  "supported by tideserve)")
        stack = self._stack(p["StackName"])
        resources = self.store.resources(stack.stack_id).values()
        wanted = p.get("LogicalResourceId")
        return {"StackResources": [views.resource_view(stack, r) for r in resources
                                   if wanted is None or r.logical_id == wanted]}

    def describe_stack_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(p["StackName"])
        res = self.store.resources(stack.stack_id).get(p["LogicalResourceId"])
        if res is None:
            raise ValidationError(f"Resource {p['LogicalResourceId']} does not exist for stack "
                                  f"{stack.name}")
        return {"StackResourceDetail": views.resource_view(stack, res, detail=True)}

    def list_stack_resources(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(p["StackName"])
        return {"StackResourceSummaries": [views.resource_summary(r) for r in
                                           self.store.resources(stack.stack_id).values()]}

    def list_exports(self, p: dict[str, Any]) -> dict[str, Any]:
        exports = []
        for stack in self.store.stacks():
            for output in stack.outputs:
                if output.get("ExportName"):
                    exports.append({"ExportingStackId": stack.stack_id,
                                    "Name": output["ExportName"],
                                    "Value": output["OutputValue"]})
        return {"Exports": exports}

    # -- templates -------------------------------------------------------------------------

    def get_template(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("ChangeSetName"):
            cs = self._change_set(p["ChangeSetName"], p.get("StackName"))
            return {"TemplateBody": cs.template_text, "StagesAvailable": ["Original"]}
        stack = self._stack(p["StackName"])
        return {"TemplateBody": stack.template_text, "StagesAvailable": ["Original",
                                                                         "Processed"]}

    def get_template_summary(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("StackName"):
            text = self._stack(p["StackName"]).template_text
        else:
            text = self._template_text(p)
        template = parse_template(text)
        params = []
        for decl in template.parameters.values():
            entry: dict[str, Any] = {"ParameterKey": decl.name, "ParameterType": decl.type,
                                     "NoEcho": decl.no_echo, "ParameterConstraints": {}}
            if decl.default is not None:
                entry["DefaultValue"] = decl.default
            if decl.description:
                entry["Description"] = decl.description
            if decl.allowed_values is not None:
                entry["ParameterConstraints"] = {"AllowedValues": list(decl.allowed_values)}
            params.append(entry)
        out: dict[str, Any] = {
            "Parameters": params, "Version": str(template.body.get(
                "AWSTemplateFormatVersion", "2010-09-09")),
            "ResourceTypes": sorted({d.type for d in template.resources.values()}),
            "Capabilities": [], "DeclaredTransforms": []}
        if template.description:
            out["Description"] = template.description
        return out

    def validate_template(self, p: dict[str, Any]) -> dict[str, Any]:
        template = parse_template(self._template_text(p))
        params = [{k: v for k, v in (("ParameterKey", d.name), ("DefaultValue", d.default),
                                     ("NoEcho", d.no_echo), ("Description", d.description))
                   if v is not None} for d in template.parameters.values()]
        out: dict[str, Any] = {"Parameters": params, "Capabilities": [],
                               "DeclaredTransforms": []}
        if template.description:
            out["Description"] = template.description
        return out

    # -- change sets -----------------------------------------------------------------------

    def _change_set(self, name: str, stack_name: str | None) -> ChangeSetRecord:
        if name.startswith("arn:"):
            candidates = [s for s in self.store.stacks()]
        elif stack_name:
            stack = self.store.stack(stack_name)
            candidates = [stack] if stack else []
        else:
            raise ValidationError("StackName must be specified if ChangeSetName is not "
                                  "specified as an ARN.")
        for stack in candidates:
            for cs in self.store.change_sets(stack.stack_id):
                if name in (cs.change_set_id, cs.name):
                    return cs
        raise NotFoundError(f"ChangeSet [{name}] does not exist", code="ChangeSetNotFound")

    def create_change_set(self, p: dict[str, Any]) -> dict[str, Any]:
        name, kind = p["StackName"], p.get("ChangeSetType", "UPDATE")
        self._check_name(name)
        stack = self.store.stack(name)
        if kind == "CREATE":
            if stack is not None and stack.status != "REVIEW_IN_PROGRESS":
                raise ValidationError(f"Stack [{name}] already exists and cannot be created "
                                      f"again with the changeSet [{p['ChangeSetName']}].")
        elif kind == "UPDATE":
            if stack is None or stack.status == "REVIEW_IN_PROGRESS":
                raise missing_stack(name)
            self._check_updatable(stack)
        else:
            raise ValidationError(f"ChangeSetType {kind} is not supported by tideserve")
        previous = stack if kind == "UPDATE" else None
        text = self._template_text(p, previous)
        stack_id = stack.stack_id if stack else self._stack_arn(name)
        evaluated = self._evaluate(text, self._given(p, previous), name, stack_id)
        for old in self.store.change_sets(stack.stack_id) if stack else []:
            if old.name != p["ChangeSetName"]:
                continue
            if old.execution_status != "EXECUTE_COMPLETE":
                raise AlreadyExistsError(f"ChangeSet {p['ChangeSetName']} already exists",
                                         code="AlreadyExistsException")
            # An executed one is history: the CLI names its change sets by the second, and a
            # deploy right after a quick update may ask for the same name again.
            self.store.drop_change_set(old.change_set_id)
        if stack is None:
            stack = StackRecord(stack_id, name, "REVIEW_IN_PROGRESS", self.clock.now(),
                                description=evaluated.template.description)
            self.engine.set_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
        live = self.store.resources(stack_id) if kind == "UPDATE" else {}
        changes = plan_changes(evaluated, live, self.engine.providers, self.region)
        empty = kind == "UPDATE" and not changes and text == stack.template_text and \
            evaluated.given == stack.parameters
        cs = ChangeSetRecord(
            change_set_id=(f"arn:aws:cloudformation:{self.region}:{self.account}:changeSet/"
                           f"{p['ChangeSetName']}/{uuid.uuid4()}"),
            name=p["ChangeSetName"], stack_id=stack_id, stack_name=name,
            change_set_type=kind, status="FAILED" if empty else "CREATE_COMPLETE",
            execution_status="UNAVAILABLE" if empty else "AVAILABLE",
            created=self.clock.now(), template_text=text, parameters=evaluated.given,
            changes=changes, reason=NO_CHANGES if empty else None,
            description=p.get("Description"), capabilities=list(p.get("Capabilities") or []),
            tags=list(p.get("Tags") or []))
        self.store.put_change_set(cs)
        return {"Id": cs.change_set_id, "StackId": stack_id}

    def describe_change_set(self, p: dict[str, Any]) -> dict[str, Any]:
        return views.change_set_view(self._change_set(p["ChangeSetName"], p.get("StackName")))

    def list_change_sets(self, p: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(p["StackName"])
        return {"Summaries": [views.change_set_summary(cs)
                              for cs in self.store.change_sets(stack.stack_id)]}

    def delete_change_set(self, p: dict[str, Any]) -> dict[str, Any]:
        cs = self._change_set(p["ChangeSetName"], p.get("StackName"))
        if cs.execution_status == "EXECUTE_IN_PROGRESS":
            raise ConflictError("Cannot delete a change set while it is executing",
                                code="InvalidChangeSetStatus")
        self.store.drop_change_set(cs.change_set_id)
        return {}

    async def execute_change_set(self, p: dict[str, Any]) -> dict[str, Any]:
        cs = self._change_set(p["ChangeSetName"], p.get("StackName"))
        if cs.execution_status != "AVAILABLE":
            raise ConflictError(f"ChangeSet [{cs.change_set_id}] cannot be executed in its "
                                f"current status of [{cs.status}]",
                                code="InvalidChangeSetStatus")
        stack = self._stack(cs.stack_id)
        evaluated = self._evaluate(cs.template_text, cs.parameters, stack.name, stack.stack_id)
        for other in self.store.change_sets(stack.stack_id):  # executing one drops the rest
            if other.change_set_id != cs.change_set_id:
                self.store.drop_change_set(other.change_set_id)
        cs.execution_status = "EXECUTE_COMPLETE"
        self.store.put_change_set(cs)
        stack.change_set_id = cs.change_set_id
        if cs.change_set_type == "CREATE":
            stack.template_text, stack.parameters = cs.template_text, evaluated.given
            stack.resolved = evaluated.resolved
            stack.capabilities, stack.tags = cs.capabilities, cs.tags
            stack.disable_rollback = bool(p.get("DisableRollback"))
            self.store.put_stack(stack)
            await self.engine.start(lambda: self.engine.create(stack, evaluated))
        else:
            await self._begin_update(stack, evaluated, cs.template_text, p)
        return {}
