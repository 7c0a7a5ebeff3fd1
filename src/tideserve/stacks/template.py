"""A template's text (JSON or YAML) parsed and checked into its sections, before anything in
it is evaluated. Every fault is a `ValidationError` worded as CloudFormation words it
("Template format error: ...")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from tideserve.errors import ValidationError
from tideserve.stacks.yaml_tags import load_yaml

MAX_BODY_BYTES = 51_200
SECTIONS = frozenset({"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters",
                      "Rules", "Mappings", "Conditions", "Transform", "Resources", "Outputs"})
RESOURCE_ATTRIBUTES = frozenset({"Type", "Properties", "DependsOn", "Condition",
                                 "DeletionPolicy", "UpdateReplacePolicy", "Metadata",
                                 "CreationPolicy", "UpdatePolicy"})


def format_error(detail: str) -> ValidationError:
    return ValidationError(f"Template format error: {detail}")


@dataclass(frozen=True)
class ParameterDecl:
    name: str
    type: str
    default: str | None
    allowed_values: tuple[str, ...] | None
    no_echo: bool
    description: str | None

    @property
    def is_ssm(self) -> bool:
        return self.type.startswith("AWS::SSM::Parameter::Value<")


@dataclass(frozen=True)
class ResourceDecl:
    logical_id: str
    type: str
    properties: dict[str, Any]
    depends_on: tuple[str, ...]
    condition: str | None
    deletion_policy: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]
    text: str
    description: str | None
    parameters: dict[str, ParameterDecl]
    mappings: dict[str, Any]
    conditions: dict[str, Any]
    rules: dict[str, Any]
    resources: dict[str, ResourceDecl]
    outputs: dict[str, Any] = field(default_factory=dict)


def parse_template(text: str) -> Template:
    """`text` as a Template; JSON when it parses as JSON, YAML (short-form tags) otherwise."""
    if len(text.encode()) > MAX_BODY_BYTES:
        raise ValidationError(
            f"1 validation error detected: Value at 'templateBody' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_BODY_BYTES}")
    body = _load(text)
    if not isinstance(body, dict):
        raise format_error("not a JSON or YAML object")
    unknown = sorted(set(body) - SECTIONS)
    if unknown:
        raise format_error(f"Invalid template property or properties [{', '.join(unknown)}]")
    resources = body.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise format_error("At least one Resources member must be defined.")
    return Template(
        body=body, text=text,
        description=_opt_str(body.get("Description")),
        parameters=_parameters(body.get("Parameters") or {}),
        mappings=_section(body, "Mappings"),
        conditions=_section(body, "Conditions"),
        rules=_section(body, "Rules"),
        resources={name: _resource(name, decl) for name, decl in resources.items()},
        outputs=_section(body, "Outputs"),
    )


def _load(text: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise format_error(f"JSON not well-formed. (line {exc.lineno}, column {exc.colno})"
                               ) from exc
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        raise format_error(f"YAML not well-formed. {exc}") from exc


def _section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise format_error(f"{name} must be an object")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parameters(section: Any) -> dict[str, ParameterDecl]:
    if not isinstance(section, dict):
        raise format_error("Parameters must be an object")
    out = {}
    for name, decl in section.items():
        if not isinstance(decl, dict) or "Type" not in decl:
            raise format_error(f"[/Parameters/{name}] 'Type' is required")
        allowed = decl.get("AllowedValues")
        default = decl.get("Default")
        out[name] = ParameterDecl(
            name=name, type=str(decl["Type"]),
            default=None if default is None else _scalar(default),
            allowed_values=None if allowed is None else tuple(_scalar(v) for v in allowed),
            no_echo=_scalar(decl.get("NoEcho", False)).lower() == "true",
            description=_opt_str(decl.get("Description")),
        )
    return out


def _scalar(value: Any) -> str:
    """A parameter attribute as CloudFormation keeps it: a string (`true`, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value)
    return str(value)


def _resource(name: str, decl: Any) -> ResourceDecl:
    if not isinstance(decl, dict) or not isinstance(decl.get("Type"), str):
        raise format_error(f"[/Resources/{name}] Every Resources object must contain a Type "
                           "member.")
    unknown = sorted(set(decl) - RESOURCE_ATTRIBUTES)
    if unknown:
        raise format_error(f"Unrecognized resource attribute(s) [{', '.join(unknown)}] in "
                           f"resource {name}")
    depends = decl.get("DependsOn") or []
    if isinstance(depends, str):
        depends = [depends]
    properties = decl.get("Properties") or {}
    if not isinstance(properties, dict):
        raise format_error(f"[/Resources/{name}/Properties] must be an object")
    return ResourceDecl(
        logical_id=name, type=decl["Type"], properties=properties,
        depends_on=tuple(str(d) for d in depends), condition=decl.get("Condition"),
        deletion_policy=str(decl.get("DeletionPolicy", "Delete")), raw=decl,
    )
