"""A template evaluated against a stack's parameters: the parameter values Ref sees, the
conditions, the Rules checked, the resources that exist under those conditions and the order
to make them in. Everything here happens before any resource is touched, so every fault is a
ValidationError the API returns at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from tideserve.errors import ValidationError
from tideserve.stacks.graph import creation_waves, dependencies
from tideserve.stacks.intrinsics import Scope, evaluate_conditions, resolve, template_error
from tideserve.stacks.template import ParameterDecl, ResourceDecl, Template

NO_ECHO_MASK = "****"
# What `cdk bootstrap` leaves in SSM, so CDK's BootstrapVersion parameter resolves.
DEFAULT_SSM = {"/cdk-bootstrap/hnb659fds/version": "21"}


@dataclass(frozen=True)
class Evaluated:
    template: Template
    given: dict[str, str]  # each declared parameter's value as given or defaulted
    resolved: dict[str, str]  # SSM-typed parameters: the stored value
    params: dict[str, Any]  # what Ref sees: parameters (lists split) and pseudo parameters
    conditions: dict[str, bool]
    resources: dict[str, ResourceDecl]  # those whose Condition holds
    waves: list[list[str]]  # groups made at once, in dependency order

    @property
    def order(self) -> list[str]:
        return [name for wave in self.waves for name in wave]

    def scope(self, **ports: Any) -> Scope:
        return Scope(self.params, self.template.mappings, self.conditions,
                     resources=frozenset(self.resources), **ports)


def pseudo_parameters(region: str, account: str, stack_name: str, stack_id: str
                      ) -> dict[str, Any]:
    return {"AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": stack_name,
            "AWS::StackId": stack_id, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": []}


def evaluate(template: Template, given: Mapping[str, str], pseudo: Mapping[str, Any],
             known_types: Collection[str], ssm: Mapping[str, str] = DEFAULT_SSM) -> Evaluated:
    unknown_types = sorted({d.type for d in template.resources.values()} - set(known_types))
    if unknown_types:
        raise ValidationError("Template format error: Unrecognized resource types: "
                              f"[{', '.join(unknown_types)}]")
    values, resolved = parameter_values(template.parameters, given, ssm)
    params: dict[str, Any] = dict(pseudo)
    for name, decl in template.parameters.items():
        params[name] = _typed(decl, resolved.get(name, values[name]))
    scope = Scope(params, template.mappings, region=str(pseudo.get("AWS::Region", "")))
    conditions = evaluate_conditions(template.conditions, scope)
    scope.conditions = conditions
    check_rules(template.rules, scope)
    active = {}
    for name, res in template.resources.items():
        if res.condition is not None and res.condition not in conditions:
            raise template_error(f"unresolved condition dependency {res.condition} in "
                                 f"resource {name}")
        if res.condition is None or conditions[res.condition]:
            active[name] = res
    waves = creation_waves(dependencies(active))
    return Evaluated(template, values, resolved, params, conditions, active, waves)


def parameter_values(decls: Mapping[str, ParameterDecl], given: Mapping[str, str],
                     ssm: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    extra = sorted(set(given) - set(decls))
    if extra:
        raise ValidationError(f"Parameters: [{', '.join(extra)}] do not exist in the template")
    values = {n: given[n] if n in given else d.default for n, d in decls.items()}
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise ValidationError(f"Parameters: [{', '.join(missing)}] must have values")
    final = {n: str(v) for n, v in values.items()}
    for name, decl in decls.items():
        if decl.allowed_values is not None and final[name] not in decl.allowed_values:
            raise ValidationError(f"Parameter '{name}' must be one of AllowedValues")
    resolved = {}
    for name, decl in decls.items():
        if decl.is_ssm:
            if final[name] not in ssm:
                raise ValidationError(f"Unable to fetch parameters [{final[name]}] from "
                                      "parameter store for this account.")
            resolved[name] = ssm[final[name]]
    return final, resolved


def _typed(decl: ParameterDecl, value: str) -> Any:
    if decl.type == "CommaDelimitedList" or decl.type.startswith("List<") or (
            decl.is_ssm and "List<" in decl.type[len("AWS::SSM::Parameter::Value<"):]) or (
            decl.type == "AWS::SSM::Parameter::Value<CommaDelimitedList>"):
        return [v.strip() for v in value.split(",")] if value else []
    return value


def check_rules(rules: Mapping[str, Any], scope: Scope) -> None:
    """Each rule whose RuleCondition holds must have every Assert true; the first false one
    is refused with its AssertDescription."""
    for name, rule in rules.items():
        if not isinstance(rule, dict):
            raise template_error(f"rule {name} must be an object")
        if "RuleCondition" in rule and resolve(rule["RuleCondition"], scope) is not True:
            continue
        for assertion in rule.get("Assertions") or []:
            if resolve(assertion.get("Assert"), scope) is not True:
                raise ValidationError(assertion.get("AssertDescription")
                                      or f"Template error: rule {name} failed")


def shown_parameters(template: Template, given: Mapping[str, str],
                     resolved: Mapping[str, str]) -> list[dict[str, Any]]:
    """DescribeStacks' Parameters: NoEcho values masked, SSM values as ResolvedValue."""
    out = []
    for name, value in given.items():
        decl = template.parameters.get(name)
        entry: dict[str, Any] = {"ParameterKey": name,
                                 "ParameterValue": NO_ECHO_MASK if decl and decl.no_echo
                                 else value}
        if name in resolved:
            entry["ResolvedValue"] = resolved[name]
        out.append(entry)
    return out
