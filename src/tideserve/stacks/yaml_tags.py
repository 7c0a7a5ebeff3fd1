"""A YAML loader that reads CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`,
`!Sub ...`) as the long form (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...)."""

from __future__ import annotations

from typing import Any

import yaml

_FUNCTIONS = ("Base64", "Cidr", "FindInMap", "GetAZs", "ImportValue", "Join", "Select", "Split",
              "Sub", "If", "Equals", "Not", "And", "Or", "Contains", "Length", "ToJsonString",
              "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll")


class TemplateLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader plus the CloudFormation tags; mapping keys keep their order."""


def _node_value(loader: TemplateLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _function(name: str) -> Any:
    def construct(loader: TemplateLoader, node: yaml.Node) -> Any:
        return {name: _node_value(loader, node)}
    return construct


def _get_att(loader: TemplateLoader, node: yaml.Node) -> Any:
    value = _node_value(loader, node)
    if isinstance(value, str):
        # The attribute may itself contain dots (Endpoint.Address): split at the first one.
        logical, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical, attribute]}
    return {"Fn::GetAtt": value}


# Dates stay strings: `AWSTemplateFormatVersion: 2010-09-09` is a version, not a date.
TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp",
                               lambda loader, node: loader.construct_scalar(node))
TemplateLoader.add_constructor("!Ref", _function("Ref"))
TemplateLoader.add_constructor("!Condition", _function("Condition"))
TemplateLoader.add_constructor("!GetAtt", _get_att)
for _name in _FUNCTIONS:
    TemplateLoader.add_constructor(f"!{_name}", _function(f"Fn::{_name}"))


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - SafeLoader subclass
