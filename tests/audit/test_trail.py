"""The audit trail's records: what CloudTrail puts in an event and what it leaves out, the
autoscaler's own capacity changes under AAS's service-linked role, and LookupEvents' filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tideserve.api.ports import ApiCall
from tideserve.audit.lookup_api import CloudTrailLookup
from tideserve.audit.records import HIDDEN, build_record
from tideserve.audit.service_calls import AAS_PRINCIPAL, AuditedCapacity
from tideserve.audit.trail import Trail
from tideserve.clock import FakeClock
from tideserve.db import make_engine, sqlite_url
from tideserve.errors import ConflictError
from tideserve.schema import create_all

ALICE = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn":
         "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012",
         "accessKeyId": "AKIAALICE", "userName": "alice"}


def call(operation: str, params: dict, result: dict | None = None, service: str = "sagemaker",
         error: str | None = None) -> ApiCall:
    return ApiCall(service, operation, ALICE, params, result, error,
                   "refused" if error else None, "req-1", "127.0.0.1", "Boto3/1.44.8", "us-east-1")


def test_a_create_endpoint_record_has_cloudtrails_fields():
    record = build_record(
        call("CreateEndpoint", {"EndpointName": "MyEp", "EndpointConfigName": "Cfg"},
             {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/myep"}),
        "evt-1", 1_767_607_207.0, "123456789012")
    assert record["eventTime"] == "2026-01-05T10:00:07Z"
    assert record["requestParameters"] == {"endpointName": "MyEp", "endpointConfigName": "Cfg"}
    assert record["responseElements"] == {
        "endpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/myep"}
    assert (record["readOnly"], record["eventType"], record["eventCategory"]) == \
        (False, "AwsApiCall", "Management")
    assert (record["requestID"], record["eventID"]) == ("req-1", "evt-1")
    assert record["userIdentity"] == ALICE


def test_secrets_and_payloads_are_left_out():
    model = build_record(call("CreateModel", {
        "ModelName": "m", "PrimaryContainer": {"Image": "i", "Environment": {"API_KEY": "k1"}}}),
        "e", 0.0, "1")
    assert model["requestParameters"]["primaryContainer"]["environment"] == {"API_KEY": HIDDEN}
    key = build_record(call("CreateAccessKey", {}, {"AccessKey": {
        "AccessKeyId": "AKIA1", "SecretAccessKey": "s3cr3t", "Status": "Active"}},
        service="iam"), "e", 0.0, "1")
    assert key["responseElements"] == {"accessKey": {"accessKeyId": "AKIA1", "status": "Active"}}
    assert key["awsRegion"] == "us-east-1"
    put = build_record(call("PutObject", {"Bucket": "b", "Key": "k", "Body": b"data"},
                            service="s3"), "e", 0.0, "1")
    assert put["requestParameters"] == {"bucket": "b", "key": "k"}
    assert put["eventCategory"] == "Data" and put["managementEvent"] is False


def test_read_only_calls_have_no_response_and_refusals_no_parameters():
    describe = build_record(call("DescribeEndpoint", {"EndpointName": "e"}, {"x": 1}), "e", 0, "1")
    assert describe["readOnly"] is True and describe["responseElements"] is None
    denied = build_record(call("DeleteEndpoint", {"EndpointName": "e"},
                               error="AccessDeniedException"), "e", 0, "1")
    assert denied["requestParameters"] is None and denied["errorCode"] == "AccessDeniedException"


@pytest.fixture
def trail(tmp_path):
    engine = make_engine(sqlite_url(tmp_path))
    create_all(engine)
    clock = FakeClock()
    return Trail(engine, "123456789012", clock), clock


class Endpoint:
    """The capacity port the driver sees: refuses while the endpoint is Updating."""

    def __init__(self) -> None:
        self.updating = False
        self.set: list[int] = []

    def capacity(self, resource_id: str) -> None:
        return None

    def set_desired_capacity(self, resource_id: str, n: int) -> None:
        if self.updating:
            raise ConflictError("Cannot update in-progress endpoint")
        self.set.append(n)


def test_the_autoscalers_capacity_changes_are_the_services_own(trail):
    store, clock = trail
    endpoint = Endpoint()
    port = AuditedCapacity(endpoint, store, "123456789012", "us-east-1")
    port.set_desired_capacity("endpoint/churn/variant/AllTraffic", 3)
    endpoint.updating = True
    clock.advance(60)
    with pytest.raises(ConflictError):
        port.set_desired_capacity("endpoint/churn/variant/AllTraffic", 4)
    events = CloudTrailLookup(store, clock).lookup_events({"LookupAttributes": [
        {"AttributeKey": "EventName", "AttributeValue": "UpdateEndpointWeightsAndCapacities"}]})
    refused, applied = (json.loads(e["CloudTrailEvent"]) for e in events["Events"])
    assert applied["userIdentity"]["type"] == "AssumedRole"
    assert applied["userIdentity"]["arn"].endswith(
        ":assumed-role/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint/"
        "AutoScaling-UpdateDesiredCapacity")
    assert applied["userIdentity"]["invokedBy"] == applied["sourceIPAddress"] == \
        applied["userAgent"] == AAS_PRINCIPAL
    assert applied["requestParameters"]["desiredWeightsAndCapacities"] == [
        {"variantName": "AllTraffic", "desiredInstanceCount": 3}]
    assert refused["errorMessage"] == "Cannot update in-progress endpoint"


def test_lookup_filters_by_resource_user_and_time(trail):
    store, clock = trail
    store.record(call("CreateEndpoint", {"EndpointName": "a", "EndpointConfigName": "c"}))
    clock.advance(10)
    store.record(call("DeleteEndpoint", {"EndpointName": "b"}))
    lookup = CloudTrailLookup(store, clock)

    def names(attribute: str, value: str, **extra) -> list[str]:
        events = lookup.lookup_events({"LookupAttributes": [
            {"AttributeKey": attribute, "AttributeValue": value}], **extra})["Events"]
        return [e["EventName"] for e in events]
    assert names("ResourceName", "a") == ["CreateEndpoint"]
    assert names("ResourceType", "AWS::SageMaker::Endpoint") == ["DeleteEndpoint",
                                                                 "CreateEndpoint"]
    assert names("Username", "alice") == ["DeleteEndpoint", "CreateEndpoint"]
    assert names("ReadOnly", "false") == ["DeleteEndpoint", "CreateEndpoint"]
    assert names("EventSource", "sagemaker.amazonaws.com",
                 EndTime=datetime.fromtimestamp(clock.now() - 5, tz=UTC)) == ["CreateEndpoint"]
