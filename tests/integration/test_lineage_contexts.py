"""The lineage context SageMaker keeps per endpoint: ListContexts finds it by the endpoint's
ARN, DescribeContext loads it, and it goes with the endpoint."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import deploy, wait_in_service
from tests.support import RunningServer

pytestmark = pytest.mark.integration


def test_each_endpoint_has_a_context_found_by_its_arn(server: RunningServer, trained):
    _, _, archive, _ = trained
    sm = server.client("sagemaker")
    deploy(sm, "ctx-a", str(archive))
    deploy(sm, "ctx-b", str(archive), model="ctx-a")
    arn = sm.describe_endpoint(EndpointName="ctx-a")["EndpointArn"]

    found = sm.list_contexts(SourceUri=arn)["ContextSummaries"]
    assert len(found) == 1
    summary = found[0]
    assert summary["ContextType"] == "Endpoint" and summary["Source"]["SourceUri"] == arn
    assert summary["ContextName"].startswith("ctx-a-")
    assert summary["ContextName"].endswith("-aws-endpoint")
    assert summary["ContextArn"].endswith(f":context/{summary['ContextName']}")
    described = sm.describe_context(ContextName=summary["ContextName"])
    assert described["ContextArn"] == summary["ContextArn"]

    both = sm.list_contexts(ContextType="Endpoint", SortBy="Name", SortOrder="Ascending")
    names = [c["ContextName"] for c in both["ContextSummaries"]]
    assert [n.split("-")[1] for n in names if n.startswith("ctx-")] == ["a", "b"]
    assert sm.list_contexts(ContextType="Model")["ContextSummaries"] == []

    wait_in_service(sm, "ctx-a")
    sm.delete_endpoint(EndpointName="ctx-a")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ctx-a",
                                           WaiterConfig={"Delay": 0.3, "MaxAttempts": 200})
    with pytest.raises(ClientError) as caught:  # the context went with its endpoint
        sm.describe_context(ContextName=summary["ContextName"])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    assert sm.list_contexts(SourceUri=arn)["ContextSummaries"] == []
