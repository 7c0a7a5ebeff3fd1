"""Keys, permissions and the audit trail against a real `tideserve up`, as a user meets them:
IAM users and keys made with boto3, an invoke-only key that may invoke its endpoint and
nothing else, refusals in AWS's words and in the trail, and `aws cloudtrail lookup-events`
naming who deleted an endpoint. Authentication failures and a malformed policy change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.integration.test_identity_services import _aws
from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer, csv_rows
from tideserve.access.presets import preset_policy
from tideserve.cli import main
from tideserve.tracing.cli import fetch_traces

pytestmark = pytest.mark.integration


def keyed(server: RunningServer, service: str, key: dict) -> object:
    """A boto3 client of the server signed with an access key CreateAccessKey returned."""
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", config=cfg,
                        aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"])


def user_with_key(server: RunningServer, name: str, policy: str | None) -> dict:
    iam = server.client("iam")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    return iam.create_access_key(UserName=name)["AccessKey"]


def lookup(server: RunningServer, key: str, value: str) -> list[dict]:
    ct = server.client("cloudtrail")
    events = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])["Events"]
    return events


def refused(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response


def test_an_invoke_only_key_invokes_its_endpoint_and_nothing_else(server, trained, tmp_path):
    _, X, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, "granted", str(archive))
    key = user_with_key(server, "invoker", preset_policy("invoke-only", ["Granted"]))
    ops = user_with_key(server, "ops", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}))
    wait_in_service(sm, "granted")

    rt = keyed(server, "sagemaker-runtime", key)
    answer = rt.invoke_endpoint(EndpointName="granted", Body=csv_rows(X[:2]),
                                ContentType="text/csv")
    assert answer["Body"].read()

    other = refused(lambda: rt.invoke_endpoint(EndpointName="other", Body=b"1",
                                               ContentType="text/csv"))
    assert other["Error"]["Code"] == "AccessDeniedException"
    invoker_arn = "arn:aws:iam::123456789012:user/invoker"
    assert other["Error"]["Message"] == (
        f"User: {invoker_arn} is not authorized to perform: sagemaker:InvokeEndpoint on "
        "resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint/other because no "
        "identity-based policy allows the sagemaker:InvokeEndpoint action")

    queued = refused(lambda: rt.invoke_endpoint_async(EndpointName="other",
                                                       InputLocation="s3://in/x.csv"))
    assert queued["Error"]["Code"] == "AccessDeniedException"
    assert "perform: sagemaker:InvokeEndpointAsync on resource:" in queued["Error"]["Message"]

    delete = refused(lambda: keyed(server, "sagemaker", key).delete_endpoint(
        EndpointName="granted"))
    assert delete["Error"]["Code"] == "AccessDeniedException"
    assert delete["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "sagemaker:DeleteEndpoint on resource: arn:aws:sagemaker:us-east-1:123456789012:" \
           "endpoint/granted" in delete["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName="granted")["EndpointStatus"] == "InService"

    denied = json.loads(lookup(server, "Username", "invoker")[0]["CloudTrailEvent"])
    assert denied["eventName"] == "DeleteEndpoint"
    assert denied["errorCode"] == "AccessDeniedException"
    assert denied["errorMessage"] == delete["Error"]["Message"]
    assert denied["userIdentity"]["arn"] == invoker_arn
    assert denied["requestID"] == delete["ResponseMetadata"]["RequestId"]

    # tideserve's own signed routes are authorised too: traces are X-Ray's to read.
    invoker = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(RuntimeError, match="403 .*AccessDeniedException.*xray:BatchGetTraces"):
        fetch_traces(server.url, server.state_dir, credentials=invoker)
    assert "Traces" in fetch_traces(server.url, server.state_dir)  # the admin's key

    keyed(server, "sagemaker", ops).delete_endpoint(EndpointName="granted")
    found = _cli_lookup(server, tmp_path, "DeleteEndpoint")
    assert found[0]["Username"] == "ops"
    record = json.loads(found[0]["CloudTrailEvent"])
    assert record["userIdentity"] == {
        "type": "IAMUser", "principalId": record["userIdentity"]["principalId"],
        "arn": "arn:aws:iam::123456789012:user/ops", "accountId": "123456789012",
        "accessKeyId": ops["AccessKeyId"], "userName": "ops"}
    assert record["requestParameters"] == {"endpointName": "granted"}
    assert record["readOnly"] is False and record["eventSource"] == "sagemaker.amazonaws.com"
    assert "errorCode" not in record
    assert {"ResourceType": "AWS::SageMaker::Endpoint", "ResourceName": "granted"} \
        in found[0]["Resources"]


def _cli_lookup(server: RunningServer, tmp_path: Path, event_name: str) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.state_dir / "credentials"),
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run(
        [*_aws(), "cloudtrail", "lookup-events", "--lookup-attributes",
         f"AttributeKey=EventName,AttributeValue={event_name}", "--endpoint-url", server.url,
         "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["Events"])


def test_iam_users_keys_and_policies_as_boto3_sees_them(server: RunningServer):
    iam = server.client("iam")
    user = iam.create_user(UserName="alice", Path="/team/")["User"]
    assert user["Arn"] == "arn:aws:iam::123456789012:user/team/alice"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    assert refused(lambda: iam.create_user(UserName="ALICE"))["Error"]["Code"] == \
        "EntityAlreadyExists"

    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:GetUser", "sts:*"], "Resource": "*"}]}
    iam.put_user_policy(UserName="alice", PolicyName="self", PolicyDocument=json.dumps(document))
    assert iam.get_user_policy(UserName="alice", PolicyName="self")["PolicyDocument"] == document
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == ["self"]

    first = iam.create_access_key(UserName="alice")["AccessKey"]
    second = iam.create_access_key(UserName="alice")["AccessKey"]
    iam.update_access_key(UserName="alice", AccessKeyId=second["AccessKeyId"], Status="Inactive")
    third = refused(lambda: iam.create_access_key(UserName="alice"))
    assert third["Error"]["Code"] == "LimitExceeded"
    assert third["Error"]["Message"] == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert third["ResponseMetadata"]["HTTPStatusCode"] == 409
    listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert {(k["AccessKeyId"], k["Status"]) for k in listed} == {
        (first["AccessKeyId"], "Active"), (second["AccessKeyId"], "Inactive")}
    assert all("SecretAccessKey" not in k for k in listed)

    me = keyed(server, "sts", first).get_caller_identity()
    assert (me["Arn"], me["UserId"]) == (user["Arn"], user["UserId"])
    assert keyed(server, "iam", first).get_user()["User"]["UserName"] == "alice"
    denied = refused(lambda: keyed(server, "iam", first).list_users())
    assert denied["Error"]["Code"] == "AccessDenied"
    assert denied["ResponseMetadata"]["HTTPStatusCode"] == 403

    created = json.loads(lookup(server, "AccessKeyId", server.credentials()[0])[0]
                         ["CloudTrailEvent"])
    assert created["eventName"] == "ListAccessKeys" and created["responseElements"] is None
    issued = [json.loads(e["CloudTrailEvent"]) for e in lookup(server, "EventName",
                                                                "CreateAccessKey")]
    ours = next(e for e in issued if e["responseElements"]
                and e["responseElements"]["accessKey"]["accessKeyId"] == first["AccessKeyId"])
    assert ours["awsRegion"] == "us-east-1"
    assert first["SecretAccessKey"] not in json.dumps(issued)
    assert "secretAccessKey" not in ours["responseElements"]["accessKey"]

    for key in (first, second):
        iam.delete_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"])
    assert refused(lambda: iam.delete_user(UserName="alice"))["Error"]["Code"] == "DeleteConflict"
    iam.delete_user_policy(UserName="alice", PolicyName="self")
    iam.delete_user(UserName="alice")
    assert refused(lambda: iam.get_user(UserName="alice"))["Error"]["Code"] == "NoSuchEntity"


def test_failed_authentication_and_a_malformed_policy_change_nothing(server, monkeypatch):
    iam = server.client("iam")
    key = user_with_key(server, "mallory", preset_policy("admin"))

    tampered = keyed(server, "iam", {**key, "SecretAccessKey": key["SecretAccessKey"][:-1] + "x"})
    bad = refused(lambda: tampered.create_user(UserName="tampered"))
    assert (bad["Error"]["Code"], bad["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("SignatureDoesNotMatch", 403)

    late = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    with monkeypatch.context() as m:
        m.setattr(botocore.auth, "get_current_datetime", lambda: late)
        expired = refused(lambda: keyed(server, "iam", key).create_user(UserName="expired"))
        json_expired = refused(lambda: keyed(server, "sagemaker", key).delete_model(
            ModelName="anything"))
    assert expired["Error"]["Code"] == "SignatureDoesNotMatch"
    assert expired["Error"]["Message"].startswith("Signature expired:")
    assert json_expired["Error"]["Code"] == "InvalidSignatureException"

    iam.update_access_key(UserName="mallory", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    disabled = refused(lambda: keyed(server, "iam", key).create_user(UserName="disabled"))
    assert disabled["Error"]["Code"] == "InvalidClientTokenId"
    assert disabled["Error"]["Message"] == "The security token included in the request is invalid."
    json_disabled = refused(lambda: keyed(server, "sagemaker", key).list_endpoints())
    assert json_disabled["Error"]["Code"] == "UnrecognizedClientException"
    s3_disabled = refused(lambda: keyed(server, "s3", key).create_bucket(Bucket="disabled"))
    assert s3_disabled["Error"]["Code"] == "InvalidAccessKeyId"

    malformed = refused(lambda: iam.put_user_policy(
        UserName="mallory", PolicyName="broken", PolicyDocument='{"Statement": [{"Effect": '))
    assert (malformed["Error"]["Code"], malformed["Error"]["Message"]) == \
        ("MalformedPolicyDocument", "Syntax errors in policy.")
    assert malformed["ResponseMetadata"]["HTTPStatusCode"] == 400

    names = {u["UserName"] for u in iam.list_users()["Users"]}
    assert not names & {"tampered", "expired", "disabled"}
    assert iam.list_user_policies(UserName="mallory")["PolicyNames"] == ["p"]
    assert "disabled" not in {b["Name"] for b in server.client("s3").list_buckets()["Buckets"]}
    failed = json.loads(lookup(server, "EventName", "PutUserPolicy")[0]["CloudTrailEvent"])
    assert failed["errorCode"] == "MalformedPolicyDocument"

    iam.update_access_key(UserName="mallory", AccessKeyId=key["AccessKeyId"], Status="Active")
    assert keyed(server, "sts", key).get_caller_identity()["Arn"].endswith(":user/mallory")


def test_s3_writes_are_authorised_and_audited_without_their_bodies(server: RunningServer):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="audited")
    s3.put_object(Bucket="audited", Key="models/a.tar.gz", Body=b"secret-model-bytes")
    put = json.loads(lookup(server, "EventName", "PutObject")[0]["CloudTrailEvent"])
    assert put["requestParameters"] == {"bucket": "audited", "key": "models/a.tar.gz"}
    assert put["eventCategory"] == "Data" and put["eventSource"] == "s3.amazonaws.com"
    assert "secret-model-bytes" not in json.dumps(put)

    reader = user_with_key(server, "reader", preset_policy("read-only"))
    own = keyed(server, "s3", reader)
    assert own.get_object(Bucket="audited", Key="models/a.tar.gz")["Body"].read() == \
        b"secret-model-bytes"
    denied = refused(lambda: own.put_object(Bucket="audited", Key="x", Body=b"1"))
    assert (denied["Error"]["Code"], denied["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("AccessDenied", 403)
    assert refused(lambda: own.head_object(Bucket="audited", Key="x"))["Error"]["Code"] == "404"


def test_lookup_events_pages_and_refuses_as_cloudtrail_does(server: RunningServer):
    ct = server.client("cloudtrail")
    for _ in range(3):
        server.client("sagemaker").list_endpoints()
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "ListEndpoints"}]
    first = ct.lookup_events(LookupAttributes=attribute, MaxResults=2)
    assert len(first["Events"]) == 2 and "NextToken" in first
    assert first["Events"][0]["EventTime"] >= first["Events"][1]["EventTime"]
    assert first["Events"][0]["ReadOnly"] == "true"
    pages = list(ct.get_paginator("lookup_events").paginate(
        LookupAttributes=attribute, PaginationConfig={"PageSize": 2}))
    assert "NextToken" not in pages[-1] and sum(len(p["Events"]) for p in pages) >= 3

    two = refused(lambda: ct.lookup_events(LookupAttributes=attribute * 2))
    assert two["Error"]["Code"] == "InvalidLookupAttributesException"
    now = dt.datetime.now(dt.UTC)
    backwards = refused(lambda: ct.lookup_events(StartTime=now, EndTime=now - dt.timedelta(1)))
    assert backwards["Error"]["Code"] == "InvalidTimeRangeException"
    too_many = refused(lambda: ct.lookup_events(MaxResults=51))  # botocore checks only min
    assert too_many["Error"]["Code"] == "InvalidMaxResultsException"
    bad_key = refused(lambda: ct.lookup_events(LookupAttributes=[
        {"AttributeKey": "Colour", "AttributeValue": "blue"}]))
    assert bad_key["Error"]["Code"] == "InvalidLookupAttributesException"
    token = refused(lambda: ct.lookup_events(LookupAttributes=attribute, NextToken="nonsense"))
    assert token["Error"]["Code"] == "InvalidNextTokenException"


def test_tideserve_keys_commands(server: RunningServer, monkeypatch, capsys):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(server.state_dir / "credentials"))

    def keys(*args: str) -> str:
        code = main(["keys", *args, "--url", server.url, "--state-dir", str(server.state_dir)])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    made = keys("create", "--user", "dashboard", "--policy", "invoke-only",
                "--endpoint", "churn")
    fields = dict(line.split(None, 1) for line in made.splitlines() if line.startswith("aws_"))
    key_id = fields["aws_access_key_id"].strip()
    assert key_id.startswith("AKIA")
    row = next(line for line in keys("list").splitlines() if line.startswith(key_id))
    assert row.split()[1:3] == ["dashboard", "Active"] and "tideserve-invoke-only" in row
    keys("disable", key_id)
    assert next(line for line in keys("list").splitlines()
                if line.startswith(key_id)).split()[2] == "Inactive"
    keys("delete", key_id)
    assert key_id not in keys("list")
