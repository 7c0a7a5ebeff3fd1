"""Shape-directed decoding and validation against real botocore shapes, in AWS's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tideserve.api import wire_cbor, wire_json, wire_query
from tideserve.api.javaregex import compile_java, translate
from tideserve.api.shapes import SerializationError, service_model
from tideserve.api.validation import ShapeValidationError, check

VARIANT = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}
ENDPOINT_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"


def input_shape(service: str, operation: str) -> Any:
    return service_model(service).operation_model(operation).input_shape


def message_for(service: str, operation: str, params: dict[str, Any]) -> str:
    with pytest.raises(ShapeValidationError) as caught:
        check(input_shape(service, operation), params)
    return caught.value.message


def one(path: str, value: str | None, constraint: str) -> str:
    shown = "" if value is None else f" {value}"
    return (
        f"1 validation error detected: Value{shown} at '{path}' failed to satisfy constraint: "
        f"{constraint}"
    )


CASES = [
    pytest.param(
        ("sagemaker", "DescribeEndpoint", {"EndpointName": "bad name!"}),
        one(
            "endpointName",
            "'bad name!'",
            f"Member must satisfy regular expression pattern: {ENDPOINT_PATTERN}",
        ),
        id="pattern: a space is not allowed in an endpoint name",
    ),
    pytest.param(
        ("sagemaker", "DescribeModel", {"ModelName": "a" * 64}),
        one("modelName", f"'{'a' * 64}'", "Member must have length less than or equal to 63"),
        id="length: 64 characters is one too many",
    ),
    pytest.param(
        ("sagemaker", "DescribeEndpoint", {"EndpointName": "a" * 64}),
        "2 validation errors detected: "
        f"Value '{'a' * 64}' at 'endpointName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {ENDPOINT_PATTERN}; "
        f"Value '{'a' * 64}' at 'endpointName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63",
        id="pattern and length: both broken constraints are reported",
    ),
    pytest.param(
        ("sagemaker", "DescribeEndpoint", {}),
        one("endpointName", "null", "Member must not be null"),
        id="required: a missing member is null",
    ),
    pytest.param(
        (
            "sagemaker",
            "CreateEndpointConfig",
            {"EndpointConfigName": "c", "ProductionVariants": []},
        ),
        one("productionVariants", "'[]'", "Member must have length greater than or equal to 1"),
        id="list length: at least one production variant",
    ),
    pytest.param(
        (
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [VARIANT, {**VARIANT, "InitialInstanceCount": 0}],
            },
        ),
        one(
            "productionVariants.2.member.initialInstanceCount",
            "'0'",
            "Member must have value greater than or equal to 1",
        ),
        id="range: nested path names the list element, 1-based",
    ),
    pytest.param(
        (
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [{**VARIANT, "InstanceType": "ml.m5.huge"}],
            },
        ),
        None,  # checked by prefix below: the enum is long
        id="enum: an instance type that does not exist",
    ),
    pytest.param(
        (
            "sagemaker",
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [{"ModelName": "m"}],
                "Tags": [{"Key": "team!", "Value": "x"}],
            },
        ),
        "2 validation errors detected: "
        "Value null at 'productionVariants.1.member.variantName' failed to satisfy constraint: "
        "Member must not be null; "
        "Value 'team!' at 'tags.1.member.key' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {TAG_PATTERN}",
        id="several errors are counted and joined in member order",
    ),
    pytest.param(
        (
            "application-autoscaling",
            "RegisterScalableTarget",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": "",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            },
        ),
        one("resourceId", "''", "Member must have length greater than or equal to 1"),
        id="length: an empty resource id",
    ),
    pytest.param(
        (
            "cloudwatch",
            "PutMetricAlarm",
            {
                "AlarmName": "a",
                "EvaluationPeriods": 0,
                "ComparisonOperator": "GreaterThan",
            },
        ),
        "2 validation errors detected: "
        "Value '0' at 'evaluationPeriods' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1; "
        "Value 'GreaterThan' at 'comparisonOperator' failed to satisfy constraint: "
        "Member must satisfy enum value set: [GreaterThanOrEqualToThreshold, "
        "GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold, "
        "LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, "
        "GreaterThanUpperThreshold]",
        id="range and enum on one CloudWatch alarm",
    ),
    pytest.param(
        (
            "cloudwatch",
            "GetMetricStatistics",
            {
                "Namespace": "AWS/SageMaker",
                "MetricName": "Invocations",
                "StartTime": datetime(2024, 1, 1, tzinfo=UTC),
                "EndTime": datetime(2024, 1, 2, tzinfo=UTC),
                "Period": 60,
                "Statistics": ["Sum", "Avg", "Mean"],
            },
        ),
        one(
            "statistics",
            "'[Sum, Avg, Mean]'",
            "Member must satisfy constraint: [Member must satisfy enum value set: "
            "[SampleCount, Average, Sum, Minimum, Maximum]]",
        ),
        id="a list of scalars is reported once, at the list",
    ),
]


@pytest.mark.parametrize(("request_", "expected"), CASES)
def test_bad_input_is_rejected_in_aws_words(request_: tuple, expected: str | None) -> None:
    message = message_for(*request_)
    if expected is None:
        assert message.startswith(
            one(
                "productionVariants.1.member.instanceType",
                "'ml.m5.huge'",
                "Member must satisfy enum value set: [ml.t2.medium, ml.t2.large",
            )
        )
    else:
        assert message == expected


@pytest.mark.parametrize(
    "params",
    [
        {"EndpointConfigName": "c", "ProductionVariants": [VARIANT]},
        # Unicode letters, spaces and marks are allowed in tags (\p{L}\p{Z}\p{N}).
        {
            "EndpointConfigName": "c-1",
            "ProductionVariants": [VARIANT],
            "Tags": [{"Key": "Équipe données", "Value": "北京 1"}],
        },
        # Unknown members are not the validator's business: decoding already dropped them.
        {"EndpointConfigName": "c", "ProductionVariants": [VARIANT], "Bogus": 1},
    ],
)
def test_good_input_passes(params: dict[str, Any]) -> None:
    check(input_shape("sagemaker", "CreateEndpointConfig"), params)


def test_sensitive_values_are_not_echoed() -> None:
    params = {"ModelCardName": "card", "ModelCardStatus": "Draft", "Content": "x" * 100_001}
    message = message_for("sagemaker", "CreateModelCard", params)
    assert message == one("content", None, "Member must have length less than or equal to 100000")


# -- decoding -----------------------------------------------------------------------------------


def test_json_timestamps_may_be_epoch_numbers_or_iso_text() -> None:
    shape = input_shape("cloudwatch", "GetMetricStatistics")
    body = b'{"StartTime": 1704067200, "EndTime": "2024-01-01T01:00:00.5Z", "Period": 60}'
    decoded = wire_json.parse_input(body, shape)
    assert decoded["StartTime"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert decoded["EndTime"] == datetime(2024, 1, 1, 1, 0, 0, 500000, tzinfo=UTC)


def test_json_drops_unknown_members_and_decodes_blobs() -> None:
    shape = service_model("sagemaker-runtime").operation_model("InvokeEndpoint").input_shape
    decoded = wire_json.parse_input(b'{"Body": "aGVsbG8=", "Surprise": true}', shape)
    assert decoded == {"Body": b"hello"}


@pytest.mark.parametrize(
    "body",
    [b'{"Period": "60"}', b'{"Dimensions": {"Name": "x"}}', b'{"StartTime": true}', b"[1]", b"{"],
)
def test_json_type_mismatches_are_serialization_errors(body: bytes) -> None:
    with pytest.raises(SerializationError):
        wire_json.parse_input(body, input_shape("cloudwatch", "GetMetricStatistics"))


def test_json_non_finite_doubles_are_strings_both_ways() -> None:
    model = service_model("cloudwatch")
    decoded = wire_json.parse_input(
        b'{"AlarmName": "a", "Threshold": "-Infinity"}', input_shape("cloudwatch", "PutMetricAlarm")
    )
    assert decoded["Threshold"] == float("-inf")
    output = model.operation_model("GetMetricStatistics").output_shape
    body = wire_json.render_output(output, {"Datapoints": [{"Average": float("nan")}]})
    assert body == b'{"Datapoints":[{"Average":"NaN"}]}'


def test_query_form_rebuilds_lists_and_nested_structures() -> None:
    form = wire_query.parse_form(
        b"Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FSageMaker"
        b"&MetricName=Invocations&StartTime=2024-01-01T00%3A00%3A00Z&EndTime=1704070800"
        b"&Period=60&Statistics.member.2=Sum&Statistics.member.1=Average"
        b"&Dimensions.member.1.Name=EndpointName&Dimensions.member.1.Value=e"
    )
    decoded = wire_query.parse_input(form, input_shape("cloudwatch", "GetMetricStatistics"))
    assert decoded == {
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocations",
        "Dimensions": [{"Name": "EndpointName", "Value": "e"}],
        "StartTime": datetime(2024, 1, 1, tzinfo=UTC),
        "EndTime": datetime(2024, 1, 1, 1, tzinfo=UTC),
        "Period": 60,
        "Statistics": ["Average", "Sum"],
    }


def test_query_empty_list_and_bad_number() -> None:
    shape = input_shape("cloudwatch", "GetMetricStatistics")
    assert wire_query.parse_input({"Dimensions": ""}, shape) == {"Dimensions": []}
    with pytest.raises(SerializationError):
        wire_query.parse_input({"Period": "sixty"}, shape)


def test_cbor_tag_one_is_a_timestamp() -> None:
    import cbor2

    body = cbor2.dumps({"StartTime": cbor2.CBORTag(1, 1704067200.25), "Period": 60})
    decoded = wire_cbor.parse_input(body, input_shape("cloudwatch", "GetMetricStatistics"))
    assert decoded == {"StartTime": datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC), "Period": 60}


# -- Java patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (ENDPOINT_PATTERN, ["a", "my-endpoint-1", "a--b"], ["-a", "a-", "bad name!", ""]),
        (TAG_PATTERN, ["", "Équipe 1", "a_b.c:d/e=f+g-h@i", "北京"], ["a!", "a#b", "tab\there"]),
        (r"\A\S[\p{Print}]*\z", ["model.tar.gz", "a b", "é"], [" lead", "aé", "x\n"]),
        (r"^(?! )[\p{L}\p{N}\p{Z}-_]*(?<! )$", ["a-b_c", "é 1"], [" a", "a ", "a!"]),
        (
            r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*",
            ["endpoint/e/variant/v", "emoji 😀"],
            ["nul\x00"],
        ),
        (r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}", ["k:v"], ["k!"]),
    ],
)
def test_java_patterns_match_whole_values(pattern: str, good: list[str], bad: list[str]) -> None:
    compiled = compile_java(pattern)
    assert [g for g in good if not compiled.fullmatch(g)] == []
    assert [b for b in bad if compiled.fullmatch(b)] == []


def test_every_pattern_in_the_models_we_speak_translates() -> None:
    for name in ("sagemaker", "sagemaker-runtime", "application-autoscaling", "cloudwatch", "ce"):
        model = service_model(name)
        for shape_name in model.shape_names:
            pattern = model.shape_for(shape_name).metadata.get("pattern")
            if pattern:
                compile_java(pattern)
    assert translate(r"\z") == r"\Z"
