"""A change set's Changes: what executing the new template would do to each resource, worked
out without touching any. A property that refers to a resource still to be made is `Unknown`
now, so it counts as changed (CloudFormation's Evaluation: Dynamic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideserve.stacks.evaluate import Evaluated
from tideserve.stacks.intrinsics import Scope, Unknown, is_unknown, resolve
from tideserve.stacks.providers import Provider
from tideserve.stacks.store import ResourceRecord


def plan_changes(evaluated: Evaluated, live: Mapping[str, ResourceRecord],
                 providers: Mapping[str, Provider], region: str) -> list[dict[str, Any]]:
    pending: set[str] = set()  # logical ids whose physical resource will be new

    def ref(name: str) -> Any:
        rec = live.get(name)
        if name in pending or rec is None or rec.physical_id is None:
            return Unknown(name)
        return rec.physical_id

    def get_att(name: str, attribute: str) -> Any:
        rec = live.get(name)
        if name in pending or rec is None:
            return Unknown(name)
        return rec.attributes.get(attribute, Unknown(name))

    scope: Scope = evaluated.scope(ref=ref, get_att=get_att, region=region,
                                   import_value=lambda name: Unknown(name))
    changes = []
    for logical_id in evaluated.order:
        decl = evaluated.resources[logical_id]
        provider = providers[decl.type]
        props = resolve(decl.properties, scope)
        old = live.get(logical_id)
        if old is None or old.type != decl.type:
            pending.add(logical_id)
            changes.append(_change("Add", logical_id, decl.type, None, None))
            continue
        if props == old.properties:
            continue
        replace = provider.needs_replacement(old.properties, props)
        if replace:
            pending.add(logical_id)
        dynamic = is_unknown(props)
        replacement = "True" if replace and not dynamic else ("Conditional" if dynamic
                                                              else "False")
        changes.append(_change("Modify", logical_id, decl.type, old.physical_id, replacement,
                               _details(old.properties, props)))
    for logical_id, old in live.items():
        if logical_id not in evaluated.resources:
            changes.append(_change("Remove", logical_id, old.type, old.physical_id, None))
    return changes


def _details(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append({"Target": {"Attribute": "Properties", "Name": key},
                        "Evaluation": "Dynamic" if is_unknown(new.get(key)) else "Static",
                        "ChangeSource": "DirectModification"})
    return out


def _change(action: str, logical_id: str, rtype: str, physical: str | None,
            replacement: str | None, details: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    change: dict[str, Any] = {"Action": action, "LogicalResourceId": logical_id,
                              "ResourceType": rtype}
    if physical:
        change["PhysicalResourceId"] = physical
    if replacement is not None:
        change["Replacement"] = replacement
        change["Scope"] = ["Properties"]
        change["Details"] = details or []
    return {"Type": "Resource", "ResourceChange": change}
