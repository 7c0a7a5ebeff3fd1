"""boto3, unmodified, against a real tideserve.api server: every RPC protocol round-trips values
and errors the way botocore expects from AWS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_wire_helpers import ACCESS_KEY, REGION, SECRET_KEY, aws_client, secret_for, serve
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tideserve import errors
from tideserve.api.gateway import authenticate, serve_rpc
from tideserve.api.rpc import OperationRegistry
from tideserve.api.runtime_wire import runtime_error_response

CREATED = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{}"
PROTOCOLS = ["json", "query", "smithy-rpc-v2-cbor"]


class Recorder:
    def __init__(self) -> None:
        self.metric_batches: list[dict[str, Any]] = []


def build_registry(recorder: Recorder) -> OperationRegistry:
    registry = OperationRegistry()

    def describe_endpoint(params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        if name == "missing":
            raise errors.NotFoundError(f'Could not find endpoint "{ARN.format(name)}".')
        return {
            "EndpointName": name,
            "EndpointArn": ARN.format(name.lower()),
            "EndpointConfigName": "cfg",
            "EndpointStatus": "InService",
            "CreationTime": CREATED,
            "LastModifiedTime": CREATED + timedelta(minutes=5),
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
            "NotInTheModel": "dropped",
        }

    def describe_model(params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret internal detail")

    def get_metric_statistics(params: dict[str, Any]) -> dict[str, Any]:
        if params["MetricName"] == "Bad":
            raise errors.ValidationError("The parameter Period must be a multiple of 60.")
        dims = ",".join(f"{d['Name']}={d['Value']}" for d in params.get("Dimensions", []))
        return {
            "Label": f"{params['MetricName']}|{dims}|{','.join(params['Statistics'])}",
            "Datapoints": [
                {"Timestamp": params["StartTime"], "Sum": 42.5, "SampleCount": 3.0, "Unit": "Count"}
            ],
        }

    async def put_metric_data(params: dict[str, Any]) -> None:
        recorder.metric_batches.append(params)

    async def describe_scalable_targets(params: dict[str, Any]) -> dict[str, Any]:
        raise errors.NotFoundError("No scalable target registered for endpoint/e/variant/v")

    def get_cost_and_usage(params: dict[str, Any]) -> dict[str, Any]:
        raise errors.LimitExceededError("Too many Cost Explorer queries in flight.")

    registry.register("ce", "GetCostAndUsage", get_cost_and_usage)
    registry.register("sagemaker", "DescribeEndpoint", describe_endpoint)
    registry.register("sagemaker", "DescribeModel", describe_model)
    registry.register("monitoring", "GetMetricStatistics", get_metric_statistics)
    registry.register("monitoring", "PutMetricData", put_metric_data)
    registry.register(
        "application-autoscaling", "DescribeScalableTargets", describe_scalable_targets
    )
    return registry


RUNTIME_FAILURES: dict[str, Exception] = {
    "broken-model": errors.ModelInvocationError(
        'Received client error (400) from primary with message "bad input".',
        original_status=400,
        original_message="bad input",
    ),
    "unknown": errors.NotFoundError("Endpoint unknown of account 123456789012 not found."),
    "busy": errors.ThrottledError("Rate exceeded"),
    "empty": errors.UnavailableError("No instance of endpoint empty is in service."),
}


def build_app(registry: OperationRegistry) -> Starlette:
    async def rpc(request: Request) -> Response:
        return await serve_rpc(request, registry, secret_for, time.time())

    async def invoke(request: Request) -> Response:
        body = await request.body()
        try:
            authenticate(request, body, secret_for, time.time(), expected_service="sagemaker")
            raise RUNTIME_FAILURES[request.path_params["name"]]
        except Exception as exc:
            return runtime_error_response(exc)

    return Starlette(
        routes=[
            Route("/", rpc, methods=["POST"]),
            Route("/service/{rest:path}", rpc, methods=["POST"]),
            Route("/endpoints/{name}/invocations", invoke, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def url(recorder: Recorder):
    with serve(build_app(build_registry(recorder))) as base_url:
        yield base_url


@pytest.fixture
def cloudwatch(url: str, forced_cloudwatch_models, request: pytest.FixtureRequest):
    """A CloudWatch client speaking the protocol named by the test's `protocol` parameter."""
    protocol = request.node.callspec.params["protocol"]
    return aws_client("cloudwatch", url, data_path=forced_cloudwatch_models.get(protocol))


# -- SageMaker (awsJson 1.1) --------------------------------------------------------------------


def test_describe_endpoint_timestamps_round_trip(url: str) -> None:
    out = aws_client("sagemaker", url).describe_endpoint(EndpointName="MyEndpoint")

    assert out["EndpointArn"] == ARN.format("myendpoint")
    assert out["CreationTime"] == CREATED
    assert out["LastModifiedTime"] == CREATED + timedelta(minutes=5)
    assert out["ProductionVariants"] == [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}]
    assert out["ResponseMetadata"]["RequestId"]
    assert "NotInTheModel" not in out


def test_not_found_is_reported_as_validation_exception(url: str) -> None:
    with pytest.raises(ClientError) as caught:
        aws_client("sagemaker", url).describe_endpoint(EndpointName="missing")

    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    assert error["Message"] == f'Could not find endpoint "{ARN.format("missing")}".'


def test_server_side_validation_rejects_a_bad_endpoint_name(url: str) -> None:
    # boto3 does not check patterns client-side, but send the raw request anyway so that
    # nothing between us and the server could have rejected it first.
    response = signed_post(
        url,
        "/",
        json.dumps({"EndpointName": "bad name!"}).encode(),
        {
            "X-Amz-Target": "SageMaker.DescribeEndpoint",
            "Content-Type": "application/x-amz-json-1.1",
        },
        "sagemaker",
    )

    assert response.status_code == 400
    assert response.json() == {
        "__type": "ValidationException",
        "message": "1 validation error detected: Value 'bad name!' at 'endpointName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",  # as botocore 1.44.5 writes the pattern
    }


def test_an_operation_without_a_handler_is_unknown(url: str) -> None:
    with pytest.raises(ClientError) as caught:
        aws_client("sagemaker", url).list_endpoints()
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"


def test_an_unexpected_exception_is_an_internal_failure_without_details(url: str) -> None:
    with pytest.raises(ClientError) as caught:
        aws_client("sagemaker", url).describe_model(ModelName="m")

    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"]["Code"] == "InternalFailure"
    assert "secret" not in response["Error"]["Message"]
    assert "Traceback" not in response["Error"]["Message"]


def test_application_autoscaling_not_found_is_object_not_found(url: str) -> None:
    client = aws_client("application-autoscaling", url)
    with pytest.raises(client.exceptions.ObjectNotFoundException):
        client.describe_scalable_targets(ServiceNamespace="sagemaker")


def test_cost_explorer_limit_is_its_modeled_exception(url: str) -> None:
    client = aws_client("ce", url)
    with pytest.raises(client.exceptions.LimitExceededException):
        client.get_cost_and_usage(
            TimePeriod={"Start": "2024-01-01", "End": "2024-02-01"},
            Granularity="MONTHLY",
            Metrics=["UnblendedCost"],
        )


def test_a_request_signed_for_a_service_we_do_not_serve_is_unknown(url: str) -> None:
    response = signed_post(
        url,
        "/",
        b"{}",
        {
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
        },
        "dynamodb",
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


# -- SigV4 through boto3 ------------------------------------------------------------------------


def test_a_wrong_secret_is_an_invalid_signature(url: str) -> None:
    client = aws_client("sagemaker", url, secret_key="not-the-secret")
    with pytest.raises(ClientError) as caught:
        client.describe_endpoint(EndpointName="e")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_an_unknown_access_key_is_unrecognized(url: str) -> None:
    client = aws_client("application-autoscaling", url, access_key="AKIDNOBODY")
    with pytest.raises(ClientError) as caught:
        client.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.parametrize(
    ("protocol", "code"),
    [("json", "SignatureDoesNotMatch"), ("query", "SignatureDoesNotMatch")],
)
def test_cloudwatch_reports_auth_failures_in_query_words(
    url: str, forced_cloudwatch_models, protocol: str, code: str
) -> None:
    client = aws_client(
        "cloudwatch", url, data_path=forced_cloudwatch_models.get(protocol), secret_key="wrong"
    )
    with pytest.raises(ClientError) as caught:
        client.list_metrics()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == code


# -- CloudWatch in each of its three protocols --------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cloudwatch_get_metric_statistics(cloudwatch, protocol: str) -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    out = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=[
            {"Name": "EndpointName", "Value": "e"},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        StartTime=start,
        EndTime=start + timedelta(hours=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )

    assert out["Label"] == "Invocations|EndpointName=e,VariantName=AllTraffic|Sum,SampleCount"
    assert out["Datapoints"] == [
        {"Timestamp": start, "Sum": 42.5, "SampleCount": 3.0, "Unit": "Count"}
    ]
    assert out["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cloudwatch_modeled_error_is_recognised(cloudwatch, protocol: str) -> None:
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException) as caught:
        cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Bad",
            StartTime=CREATED,
            EndTime=CREATED,
            Period=7,
            Statistics=["Sum"],
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == "The parameter Period must be a multiple of 60."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cloudwatch_shape_violation_is_validation_error(cloudwatch, protocol: str) -> None:
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            StartTime=CREATED,
            EndTime=CREATED,
            Period=60,
            Statistics=["Avg"],
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == (
        "1 validation error detected: Value '[Avg]' at 'statistics' failed to satisfy "
        "constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
        "[SampleCount, Average, Sum, Minimum, Maximum]]"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_metric_data_accepts_a_gzip_body(cloudwatch, recorder: Recorder, protocol: str) -> None:
    sent_headers: dict[str, bytes] = {}
    cloudwatch.meta.events.register(
        "before-send.cloudwatch.PutMetricData",
        lambda request, **_: sent_headers.update(request.headers),
    )
    data = [
        {
            "MetricName": "ModelLatency",
            "Dimensions": [{"Name": "EndpointName", "Value": f"endpoint-{i}"}],
            "Timestamp": CREATED,
            "Value": float(i),
            "Unit": "Microseconds",
        }
        for i in range(200)
    ]
    before = len(recorder.metric_batches)

    cloudwatch.put_metric_data(Namespace="Custom/Test", MetricData=data)

    assert sent_headers.get("Content-Encoding") == b"gzip"
    batch = recorder.metric_batches[before]
    assert batch["Namespace"] == "Custom/Test"
    assert [d["Value"] for d in batch["MetricData"]] == [float(i) for i in range(200)]
    assert batch["MetricData"][7]["Dimensions"] == [{"Name": "EndpointName", "Value": "endpoint-7"}]
    assert batch["MetricData"][0]["Timestamp"] == CREATED


# -- SageMaker Runtime errors (rest-json) -------------------------------------------------------


def test_model_error_carries_the_container_status_and_body(url: str) -> None:
    runtime = aws_client("sagemaker-runtime", url)
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="broken-model", Body=b"{}")

    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"] == "bad input"
    assert response["Error"]["Message"].startswith("Received client error (400) from primary")


@pytest.mark.parametrize(
    ("endpoint", "status", "code"),
    [
        ("unknown", 400, "ValidationError"),
        ("busy", 400, "ThrottlingException"),
        ("empty", 503, "ServiceUnavailable"),
    ],
)
def test_runtime_errors_have_aws_codes(url: str, endpoint: str, status: int, code: str) -> None:
    with pytest.raises(ClientError) as caught:
        aws_client("sagemaker-runtime", url).invoke_endpoint(EndpointName=endpoint, Body=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["Error"]["Code"] == code


def test_runtime_rejects_a_bad_signature(url: str) -> None:
    runtime = aws_client("sagemaker-runtime", url, secret_key="wrong")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="unknown", Body=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


# -- helpers ------------------------------------------------------------------------------------


def signed_post(
    url: str, path: str, body: bytes, headers: dict[str, str], service: str
) -> httpx.Response:
    request = AWSRequest(method="POST", url=url + path, data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(request)
    prepared = request.prepare()
    return httpx.post(prepared.url, content=body, headers=dict(prepared.headers.items()))
