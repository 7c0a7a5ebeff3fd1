"""The authorisation gate over a real (SQLite) IAM directory: the admin adopted from an older
server's keys may do everything, a new user nothing until a policy says so, and every IAM
change takes effect on the next request (the caches are dropped)."""

from __future__ import annotations

import json

import pytest

from tideserve.access.directory import Directory
from tideserve.access.gate import Gate
from tideserve.access.presets import preset_policy
from tideserve.control.access_keys import AccessKeys
from tideserve.control.secret_box import SecretBox
from tideserve.db import make_engine, sqlite_url
from tideserve.errors import AccessDeniedError, AuthError
from tideserve.schema import create_all

NOW = 1_700_000_000.0


@pytest.fixture
def world(tmp_path):
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    keys = AccessKeys(engine, SecretBox.from_key_file(tmp_path / "secret.key"))
    admin_key, _ = keys.create("admin", NOW)  # as an older tideserve issued it
    directory = Directory(engine, keys, "123456789012")
    directory.adopt_key_owners(NOW)
    return directory, Gate(directory, "us-east-1", "123456789012"), admin_key


def test_the_first_keys_user_is_an_administrator(world):
    directory, gate, admin_key = world
    gate.authorize(admin_key, "sagemaker", "DeleteEndpoint", {"EndpointName": "e"})
    gate.authorize(admin_key, "iam", "CreateUser", {"UserName": "bob"})
    assert gate.identify(admin_key)["userName"] == "admin"


def test_a_new_user_may_do_nothing_but_ask_who_it_is_until_a_policy_allows(world):
    directory, gate, _ = world
    directory.create_user("bob", "/", NOW)
    key, _ = directory.create_key("bob", NOW)
    gate.authorize(key.access_key_id, "sts", "GetCallerIdentity", {})
    invoke = ("sagemaker-runtime", "InvokeEndpoint", {"EndpointName": "Churn"})
    with pytest.raises(AccessDeniedError) as caught:
        gate.authorize(key.access_key_id, *invoke)
    assert caught.value.message.startswith(
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: "
        "sagemaker:InvokeEndpoint on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn because")

    directory.put_policy("bob", "invoke", preset_policy("invoke-only", ["churn"]))
    gate.authorize(key.access_key_id, *invoke)  # the cached refusal was dropped
    with pytest.raises(AccessDeniedError):
        gate.authorize(key.access_key_id, "sagemaker-runtime", "InvokeEndpoint",
                       {"EndpointName": "other"})

    directory.put_policy("bob", "no", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "sagemaker:Invoke*", "Resource": "*"}]}))
    with pytest.raises(AccessDeniedError) as caught:
        gate.authorize(key.access_key_id, *invoke)
    assert caught.value.message.endswith("with an explicit deny in an identity-based policy")


def test_an_inactive_key_is_no_one(world):
    directory, gate, admin_key = world
    gate.authorize(admin_key, "sagemaker", "ListEndpoints", {})
    directory.set_key_status(admin_key, "Inactive")
    assert gate.identify(admin_key) is None
    with pytest.raises(AuthError):
        gate.authorize(admin_key, "sagemaker", "ListEndpoints", {})


def test_conditions_are_evaluated_per_request_not_cached(world):
    directory, gate, _ = world
    directory.create_user("lan", "/", NOW)
    key, _ = directory.create_key("lan", NOW)
    directory.put_policy("lan", "lan", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}))
    gate.authorize(key.access_key_id, "sagemaker", "ListEndpoints", {}, "10.1.2.3")
    with pytest.raises(AccessDeniedError):
        gate.authorize(key.access_key_id, "sagemaker", "ListEndpoints", {}, "192.168.0.1")
