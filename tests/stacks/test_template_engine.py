"""The template engine without a server: YAML short-form tags, intrinsic functions,
conditions, rules, parameters, and the dependency order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tideserve.errors import ValidationError
from tideserve.stacks.evaluate import evaluate, pseudo_parameters, shown_parameters
from tideserve.stacks.intrinsics import NO_VALUE, Scope, resolve
from tideserve.stacks.template import parse_template
from tideserve.stacks.wiring import providers

TYPES = set(providers(buckets=None))  # type: ignore[arg-type]
PSEUDO = pseudo_parameters("us-east-1", "123456789012", "s", "arn:aws:cloudformation:x")


def run(text: str, **given: str):
    return evaluate(parse_template(text), given, PSEUDO, TYPES)


def test_short_form_tags_read_as_the_long_form():
    t = parse_template("""
AWSTemplateFormatVersion: 2010-09-09
Resources:
  A:
    Type: AWS::CDK::Metadata
    Properties:
      R: !Ref X
      G: !GetAtt Ep.Endpoint.Address
      S: !Sub "${AWS::Region}-x"
      J: !Join [",", [a, b]]
      I: !If [C, 1, !Ref AWS::NoValue]
      E: !Equals [a, b]
      N: !Not [!Equals [a, b]]
      F: !FindInMap [M, k, v]
      Z: !GetAZs ""
      V: !ImportValue exported
      P: !Split [",", "a,b"]
      L: !Select [0, [a]]
""")
    props = t.resources["A"].properties
    assert t.body["AWSTemplateFormatVersion"] == "2010-09-09"
    assert props["R"] == {"Ref": "X"}
    assert props["G"] == {"Fn::GetAtt": ["Ep", "Endpoint.Address"]}
    assert props["S"] == {"Fn::Sub": "${AWS::Region}-x"}
    assert props["I"] == {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]}
    assert props["N"] == {"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}
    assert props["V"] == {"Fn::ImportValue": "exported"}


def scope(**params) -> Scope:
    return Scope({**PSEUDO, **params}, mappings={"M": {"us-east-1": {"ami": "ami-1"}}},
                 conditions={"Yes": True, "No": False}, resources=frozenset({"R"}),
                 ref=lambda n: f"phys-{n}", get_att=lambda n, a: f"{n}.{a}",
                 import_value=lambda n: f"imported-{n}")


@pytest.mark.parametrize("expr, expected", [
    ({"Ref": "AWS::StackName"}, "s"),
    ({"Ref": "R"}, "phys-R"),
    ({"Fn::GetAtt": ["R", "Arn"]}, "R.Arn"),
    ({"Fn::Sub": "${AWS::Region}/${R}/${R.Name}/${!Literal}"},
     "us-east-1/phys-R/R.Name/${Literal}"),
    ({"Fn::Sub": ["${x}-${AWS::AccountId}", {"x": {"Ref": "R"}}]}, "phys-R-123456789012"),
    ({"Fn::Join": ["-", ["a", {"Ref": "R"}]]}, "a-phys-R"),
    ({"Fn::Select": ["1", ["a", "b"]]}, "b"),
    ({"Fn::Split": [",", "a,b"]}, ["a", "b"]),
    ({"Fn::If": ["Yes", "t", "f"]}, "t"),
    ({"Fn::If": ["No", "t", "f"]}, "f"),
    ({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "ami"]}, "ami-1"),
    ({"Fn::GetAZs": ""}, ["us-east-1a", "us-east-1b", "us-east-1c"]),
    ({"Fn::ImportValue": "e"}, "imported-e"),
    ({"Fn::And": [{"Fn::Equals": ["a", "a"]}, {"Condition": "Yes"}]}, True),
    ({"Fn::Or": [{"Condition": "No"}, {"Fn::Not": [{"Condition": "Yes"}]}]}, False),
    ({"Ref": "AWS::Partition"}, "aws"),
    ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
])
def test_intrinsic_functions(expr, expected):
    assert resolve(expr, scope()) == expected


def test_no_value_removes_the_property_and_list_item():
    value = {"Keep": 1, "Drop": {"Fn::If": ["No", 1, {"Ref": "AWS::NoValue"}]},
             "List": ["a", {"Ref": "AWS::NoValue"}]}
    assert resolve(value, scope()) == {"Keep": 1, "List": ["a"]}
    assert resolve({"Ref": "AWS::NoValue"}, scope()) is NO_VALUE


def test_select_out_of_range_is_a_template_error():
    with pytest.raises(ValidationError, match="Fn::Select"):
        resolve({"Fn::Select": [3, ["a"]]}, scope())


TWO = """
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Secret: {Type: String, NoEcho: true}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Later:
    Type: AWS::CDK::Metadata
    Properties: {X: !Ref Earlier, Y: !Sub "${Middle.Arn}"}
  Middle:
    Type: AWS::CDK::Metadata
    DependsOn: Earlier
  Earlier:
    Type: AWS::CDK::Metadata
  ProdOnly:
    Type: AWS::CDK::Metadata
    Condition: IsProd
"""


def test_resources_come_in_dependency_order_and_conditions_leave_some_out():
    dev = run(TWO, Secret="s")
    assert dev.order == ["Earlier", "Middle", "Later"]
    prod = run(TWO, Secret="s", Env="prod")
    assert "ProdOnly" in prod.order and prod.conditions == {"IsProd": True}


def test_parameters_defaults_allowed_values_and_no_echo():
    ev = run(TWO, Secret="hunter2")
    shown = {p["ParameterKey"]: p["ParameterValue"]
             for p in shown_parameters(ev.template, ev.given, ev.resolved)}
    assert shown == {"Env": "dev", "Secret": "****"}
    with pytest.raises(ValidationError, match=r"Parameters: \[Secret\] must have values"):
        run(TWO)
    with pytest.raises(ValidationError, match="must be one of AllowedValues"):
        run(TWO, Secret="s", Env="qa")
    with pytest.raises(ValidationError, match=r"\[Nope\] do not exist in the template"):
        run(TWO, Secret="s", Nope="x")


def test_a_cycle_is_refused_naming_the_resources():
    cyclic = """
Resources:
  A: {Type: AWS::CDK::Metadata, Properties: {X: !Ref B}}
  B: {Type: AWS::CDK::Metadata, Properties: {X: !GetAtt A.Arn}}
  C: {Type: AWS::CDK::Metadata}
"""
    with pytest.raises(ValidationError, match=r"Circular dependency between resources: \[A, B\]"):
        run(cyclic)


def test_unknown_types_and_references_fail_before_anything_is_made():
    with pytest.raises(ValidationError, match=r"Unrecognized resource types: \[AWS::EC2::VPC\]"):
        run("Resources:\n  V: {Type: AWS::EC2::VPC}\n")
    with pytest.raises(ValidationError, match=r"Unresolved resource dependencies \[Ghost\]"):
        run("Resources:\n  A: {Type: AWS::CDK::Metadata, DependsOn: Ghost}\n")


def test_the_cdk_bootstrap_rule_passes_with_a_current_version_and_fails_with_5():
    body = (Path(__file__).parent.parent / "data" / "cdk_synth_stack.json").read_text()
    template = parse_template(body)
    ev = evaluate(template, {}, PSEUDO, TYPES)
    assert ev.conditions["CDKMetadataAvailable"] is True
    old = {"/cdk-bootstrap/hnb659fds/version": "5"}
    with pytest.raises(ValidationError, match="CDK bootstrap stack version 6 required"):
        evaluate(template, {}, PSEUDO, TYPES, ssm=old)
    elsewhere = pseudo_parameters("mars-1", "123456789012", "s", "x")
    assert "CDKMetadata" not in evaluate(template, {}, elsewhere, TYPES).resources
    assert json.loads(body)["Resources"]["CDKMetadata"]["Type"] == "AWS::CDK::Metadata"


def test_cloudformation_errors_carry_its_query_codes():
    from tideserve.api.errors import wire_error
    from tideserve.errors import AlreadyExistsError, NotFoundError

    missing = wire_error("cloudformation", NotFoundError("x", code="ChangeSetNotFound"))
    assert (missing.code, missing.status) == ("ChangeSetNotFound", 404)
    assert wire_error("cloudformation", ValidationError("x")).code == "ValidationError"
    exists = wire_error("cloudformation", AlreadyExistsError("x"))
    assert (exists.code, exists.status) == ("AlreadyExistsException", 400)
