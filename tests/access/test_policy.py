"""IAM policy evaluation as the IAM User Guide states it: explicit deny wins, no allow is an
implicit deny, actions match case-insensitively with wildcards, resources case-sensitively;
and the documents IAM refuses as MalformedPolicyDocument."""

from __future__ import annotations

import json

import pytest

from tideserve.access.policy import MalformedPolicy, Policy, evaluate, parse_policy

EP = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/myep"
OTHER = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/other"
ALICE = "arn:aws:iam::123456789012:user/alice"


def policy(*statements: dict) -> Policy:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(("name", "statements", "action", "resource", "allowed"), [
    ("an exact allow allows", [allow("sagemaker:InvokeEndpoint", EP)],
     "sagemaker:InvokeEndpoint", EP, True),
    ("actions match case-insensitively", [allow("SageMaker:invokeendpoint", EP)],
     "sagemaker:InvokeEndpoint", EP, True),
    ("an action wildcard matches the name's rest", [allow("sagemaker:Describe*")],
     "sagemaker:DescribeEndpoint", EP, True),
    ("a wildcard prefix does not match another verb", [allow("sagemaker:Describe*")],
     "sagemaker:DeleteEndpoint", EP, False),
    ("? matches one character", [allow("sagemaker:InvokeEndpoin?", EP)],
     "sagemaker:InvokeEndpoint", EP, True),
    ("* alone is every action", [allow("*")], "iam:DeleteUser", ALICE, True),
    ("resources are case-sensitive: SageMaker lower-cases ARNs",
     [allow("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/MyEp")],
     "sagemaker:InvokeEndpoint", EP, False),
    ("a resource wildcard spans colons and slashes",
     [allow("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:*:*:endpoint/*")],
     "sagemaker:InvokeEndpoint", EP, True),
    ("another endpoint is not named", [allow("sagemaker:InvokeEndpoint", EP)],
     "sagemaker:InvokeEndpoint", OTHER, False),
    ("no statement matches: implicit deny", [allow("s3:GetObject")],
     "sagemaker:DeleteEndpoint", EP, False),
    ("an explicit deny beats an allow of everything",
     [allow("*"), deny("sagemaker:DeleteEndpoint")], "sagemaker:DeleteEndpoint", EP, False),
    ("a deny of one action leaves the others allowed",
     [allow("*"), deny("sagemaker:DeleteEndpoint")], "sagemaker:DescribeEndpoint", EP, True),
    ("NotAction allow grants every other action",
     [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
     "sagemaker:DeleteEndpoint", EP, True),
    ("NotAction allow does not grant what it lists",
     [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], "iam:CreateUser", ALICE,
     False),
    ("NotResource deny denies every other resource",
     [allow("*"), {"Effect": "Deny", "Action": "*", "NotResource": EP}],
     "sagemaker:InvokeEndpoint", OTHER, False),
    ("a policy variable names the caller's own user",
     [allow("iam:*AccessKey*", "arn:aws:iam::123456789012:user/${aws:username}")],
     "iam:CreateAccessKey", ALICE, True),
])
def test_evaluation(name, statements, action, resource, allowed):
    context = {"aws:username": "alice"}
    decision = evaluate([policy(*statements)], [(action, resource)], context)
    assert decision.allowed is allowed, name


def test_the_refusal_is_worded_as_iam_words_it():
    implicit = evaluate([policy(allow("sagemaker:InvokeEndpoint", EP))],
                        [("sagemaker:DeleteEndpoint", EP)], {})
    assert implicit.message(ALICE) == (
        f"User: {ALICE} is not authorized to perform: sagemaker:DeleteEndpoint on resource: "
        f"{EP} because no identity-based policy allows the sagemaker:DeleteEndpoint action")
    explicit = evaluate([policy(allow("*"), deny("sagemaker:*"))],
                        [("sagemaker:DeleteEndpoint", EP)], {})
    assert explicit.message(ALICE).endswith(
        f"on resource: {EP} with an explicit deny in an identity-based policy")


def test_every_resource_a_call_needs_must_be_allowed():
    config = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/cfg"
    only_endpoint = policy(allow("sagemaker:CreateEndpoint", EP))
    decision = evaluate([only_endpoint], [("sagemaker:CreateEndpoint", EP),
                                          ("sagemaker:CreateEndpoint", config)], {})
    assert not decision.allowed and decision.resource == config


def test_a_deny_in_any_of_a_users_policies_wins():
    decision = evaluate([policy(allow("*")), policy(deny("sagemaker:InvokeEndpoint", EP))],
                        [("sagemaker:InvokeEndpoint", EP)], {})
    assert not decision.allowed and decision.explicit


@pytest.mark.parametrize(("name", "condition", "context", "holds"), [
    ("StringEquals on a present key", {"StringEquals": {"aws:username": "alice"}},
     {"aws:username": "alice"}, True),
    ("StringNotEquals with two values denies only when neither matches",
     {"StringNotEquals": {"aws:username": ["alice", "bob"]}}, {"aws:username": "bob"}, False),
    ("StringNotEquals with two values: a third name matches",
     {"StringNotEquals": {"aws:username": ["alice", "bob"]}}, {"aws:username": "carol"}, True),
    ("an absent key makes the condition false", {"StringEquals": {"aws:username": "alice"}},
     {}, False),
    ("IfExists is true when the key is absent",
     {"StringEqualsIfExists": {"aws:username": "alice"}}, {}, True),
    ("Null true iff absent", {"Null": {"aws:username": "true"}}, {}, True),
    ("ForAllValues is true for an absent key",
     {"ForAllValues:StringEquals": {"aws:tagkeys": ["team"]}}, {}, True),
    ("ForAnyValue is false for an absent key",
     {"ForAnyValue:StringEquals": {"aws:tagkeys": ["team"]}}, {}, False),
    ("condition keys are case-insensitive", {"StringLike": {"AWS:UserName": "al*"}},
     {"aws:username": "alice"}, True),
    ("IpAddress matches a CIDR", {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
     {"aws:sourceip": "127.0.0.1"}, True),
    ("NotIpAddress refuses an address inside", {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
     {"aws:sourceip": "127.0.0.1"}, False),
    ("NumericLessThan", {"NumericLessThan": {"aws:epochtime": "100"}},
     {"aws:epochtime": "99"}, True),
])
def test_conditions(name, condition, context, holds):
    decision = evaluate([policy(allow("*", Condition=condition))], [("s3:GetObject", "*")],
                        context)
    assert decision.allowed is holds, name


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "Syntax errors in policy."),
    ('{"Version": "2012-10-17"}', "Syntax errors in policy."),
    ('{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*", '
     '"Resource": "*"}]}', "Syntax errors in policy."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Resource": "*"}}',
     "Policy statement must contain actions."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*"}}',
     "Policy statement must contain resources."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "getobject", '
     '"Resource": "*"}}',
     "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:a:b", '
     '"Resource": "*"}}', "Actions/Condition can contain only one colon."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", '
     '"Resource": "bucket"}}', 'Resource bucket must be in ARN format or "*".'),
    ('{"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "s3:*",'
     ' "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}',
     "Statement IDs (SID) in a single policy must be unique."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", '
     '"Action": "s3:*", "Resource": "*"}}', "Policy document should not specify a principal."),
    ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", '
     '"Resource": "*", "Condition": {"StringSortOf": {"a:b": "c"}}}}',
     "Invalid Condition type : StringSortOf."),
    ('{"Version": "2012-10-17", "Version": "2008-10-17", "Statement": []}',
     "Syntax errors in policy."),
])
def test_malformed_documents_are_refused_in_iams_words(document, message):
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(document)
    assert caught.value.message == message
    assert caught.value.code == "MalformedPolicyDocument"


def test_a_missing_version_is_the_2008_grammar_without_variables():
    own = allow("iam:*", "arn:aws:iam::1:user/${aws:username}")
    legacy = parse_policy(json.dumps({"Statement": [own]}))
    assert legacy.version == "2008-10-17"
    decision = evaluate([legacy], [("iam:GetUser", "arn:aws:iam::1:user/alice")],
                        {"aws:username": "alice"})
    assert not decision.allowed  # the variable is a literal there
