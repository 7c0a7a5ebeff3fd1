"""Accepting an async request: the config, the headers, where the result will appear, and the
row that must be committed before the 202."""

from __future__ import annotations

import pytest

from tests.asyncinf.conftest import OUTPUT
from tideserve.asyncinf.config import DEFAULT_MAX_CONCURRENT_PER_INSTANCE, AsyncConfig
from tideserve.asyncinf.config import check_async_config as check
from tideserve.asyncinf.endpoints import AsyncEndpoints
from tideserve.asyncinf.front import AsyncFront, locations, parse_params
from tideserve.asyncinf.objects import LocalObjects, join, parse_s3_uri
from tideserve.errors import ValidationError

VARIANTS = [{"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}]


def config_request(async_config):
    return {"EndpointConfigName": "c", "ProductionVariants": VARIANTS,
            "AsyncInferenceConfig": async_config}


@pytest.mark.parametrize("async_config, error", [
    ({"OutputConfig": {}}, "S3OutputPath is required"),
    ({"OutputConfig": {"S3OutputPath": "https://b.example/x"}}, "not an s3:// URI"),
    ({"OutputConfig": {"S3OutputPath": "s3://ok-bucket/x", "S3FailurePath": "s3://okay/../x"}},
     "'..' segments"),
    ({"OutputConfig": {"S3OutputPath": "s3://ok-bucket/x", "NotificationConfig": {
        "IncludeInferenceResponseIn": ["ALWAYS"]}}}, "must be one of"),
])
def test_bad_async_configs_are_refused_naming_the_field(async_config, error):
    with pytest.raises(ValidationError, match=error):
        check(config_request(async_config))


def test_async_cannot_be_combined_with_serverless():
    request = config_request(OUTPUT)
    request["ProductionVariants"] = [{"VariantName": "v", "ModelName": "m",
                                      "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                           "MaxConcurrency": 5}}]
    with pytest.raises(ValidationError, match="cannot be combined with ServerlessConfig"):
        check(request)


def test_config_defaults_failure_path_to_output_path_and_chooses_a_concurrency():
    config = AsyncConfig.from_spec({"OutputConfig": {"S3OutputPath": "s3://bucket/out/"}})
    assert (config.output_path, config.failure_path) == ("s3://bucket/out", "s3://bucket/out")
    assert config.max_concurrent_per_instance == DEFAULT_MAX_CONCURRENT_PER_INSTANCE
    assert config.success_topic is None


def test_output_and_failure_locations_follow_the_extension_and_filename():
    config = AsyncConfig.from_spec({"OutputConfig": {"S3OutputPath": "s3://b/out",
                                                     "S3FailurePath": "s3://b/failed/"}})
    where = locations(config, "id-1", None, None)
    assert (where.output, where.failure) == ("s3://b/out/id-1.out", "s3://b/failed/id-1-error.out")
    where = locations(config, "id-1", "2024/june", "result.json")
    assert where.output == "s3://b/out/2024/june/result.json"
    assert where.failure == "s3://b/failed/2024/june/id-1-error.out"


def test_headers_are_checked_against_botocores_shape():
    params = parse_params("ep", {"x-amzn-sagemaker-inputlocation": "s3://b/in.csv",
                                 "x-amzn-sagemaker-requestttlseconds": "120"}, b"")
    assert params == {"EndpointName": "ep", "InputLocation": "s3://b/in.csv",
                      "RequestTTLSeconds": 120}
    with pytest.raises(ValidationError, match="requestTTLSeconds.*greater than or equal to 60"):
        parse_params("ep", {"x-amzn-sagemaker-inputlocation": "s3://b/in.csv",
                            "x-amzn-sagemaker-requestttlseconds": "5"}, b"")
    with pytest.raises(ValidationError, match="must be an integer"):
        parse_params("ep", {"x-amzn-sagemaker-invocationtimeoutseconds": "soon"}, b"x")


@pytest.mark.parametrize("headers, body", [
    ({}, b""),  # neither
    ({"x-amzn-sagemaker-inputlocation": "s3://b/in.csv"}, b"1,2"),  # both
])
def test_exactly_one_of_input_location_and_body(headers, body):
    with pytest.raises(ValidationError, match="exactly one of InputLocation or Body"):
        parse_params("ep", headers, body)


def test_uris_may_not_climb_out_of_their_bucket():
    assert parse_s3_uri("s3://bucket/a/b.csv") == ("bucket", "a/b.csv")
    for bad in ("s3://bucket/../etc/passwd", "s3://bucket", "s3://B/x", "file:///etc/passwd"):
        with pytest.raises(ValidationError):
            parse_s3_uri(bad)
    assert join("s3://b/out/", "/x/", "", "id.out") == "s3://b/out/x/id.out"


@pytest.fixture
def front(tmp_path, engine, queue, clock):
    endpoints = AsyncEndpoints(engine, queue)
    endpoints.created("Async-Ep", OUTPUT)
    status = {"async-ep": "InService", "realtime": "InService", "creating": "Creating"}
    woken: list[str] = []
    front = AsyncFront(endpoints, queue, LocalObjects(tmp_path / "s3"),
                       lambda name: status.get(name.lower()), clock, "123456789012",
                       on_accepted=woken.append)
    front.woken = woken  # type: ignore[attr-defined]
    return front


def test_an_accepted_request_is_committed_before_the_answer(front, queue, clock, tmp_path):
    (tmp_path / "s3" / "inputs").mkdir(parents=True)
    (tmp_path / "s3" / "inputs" / "x.csv").write_text("1,2,3\n")
    accepted = front.accept("Async-Ep", {"x-amzn-sagemaker-inputlocation": "s3://inputs/x.csv",
                                         "x-amzn-sagemaker-inference-id": "mine",
                                         "x-amzn-sagemaker-content-type": "text/csv"}, b"")
    assert accepted.inference_id == "mine"
    assert accepted.output_location.startswith("s3://results/out/")
    assert accepted.output_location.endswith(".out")
    claimed = queue.claim("async-ep", clock.now())
    assert claimed.input_location == "s3://inputs/x.csv"
    assert (claimed.ttl_seconds, claimed.timeout_seconds) == (21600, 900)  # AWS's defaults
    assert claimed.output_location == accepted.output_location
    assert front.woken == ["async-ep"]


def test_an_inline_body_is_kept_in_the_queue_row(front, queue, clock):
    accepted = front.accept("async-ep", {}, b"1,2,3")
    claimed = queue.claim("async-ep", clock.now())
    assert claimed.body == b"1,2,3" and claimed.inference_id == accepted.inference_id
    # With no InferenceId given, the generated one also names the output object.
    assert accepted.output_location == f"s3://results/out/{accepted.inference_id}.out"


@pytest.mark.parametrize("name, headers, error", [
    ("async-ep", {"x-amzn-sagemaker-inputlocation": "s3://inputs/missing.csv"},
     "does not exist"),
    ("nope", {}, "Endpoint nope of account 123456789012 not found"),
    ("realtime", {}, "is not an asynchronous endpoint"),
])
def test_requests_that_cannot_be_served_are_refused_and_nothing_is_queued(
        front, queue, name, headers, error):
    with pytest.raises(ValidationError, match=error):
        front.accept(name, headers, b"" if headers else b"1")
    assert queue.backlogs() == {}


def test_invoke_endpoint_on_an_async_endpoint_is_refused(front):
    with pytest.raises(ValidationError, match="invoke it with InvokeEndpointAsync"):
        front.refuse_sync("ASYNC-EP")
    front.refuse_sync("realtime")  # real-time endpoints pass


def test_the_async_endpoint_table_survives_a_restart(engine, queue):
    AsyncEndpoints(engine, queue).created("Kept", OUTPUT)
    reopened = AsyncEndpoints(engine, queue)
    assert reopened.names() == ["Kept"]
    assert reopened.describe("kept") == OUTPUT
    with pytest.raises(ValidationError, match="cannot be updated to a real-time"):
        reopened.check_update("Kept", {"ProductionVariants": VARIANTS})
