"""CreateTransformJob's checks beyond botocore's shapes, and where the defaults come from."""

from __future__ import annotations

from typing import Any

import pytest

from tideserve.errors import ValidationError
from tideserve.transform.objects import output_uri
from tideserve.transform.spec import TransformJobSpec, effective_parameters


def request(**extra: Any) -> dict[str, Any]:
    data_type = extra.pop("data_type", "S3Prefix")
    split = extra.pop("split", "Line")
    return {
        "TransformJobName": "j", "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": data_type,
                                                           "S3Uri": "s3://inputs/p/"}},
                           "SplitType": split},
        "TransformOutput": {"S3OutputPath": "s3://out/j"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}, **extra}


@pytest.mark.parametrize(("extra", "message"), [
    ({"MaxPayloadInMB": 101}, "cannot be greater than 100 MB"),
    ({"MaxPayloadInMB": 30, "MaxConcurrentTransforms": 4}, "120 MB is over the limit"),
    ({"MaxPayloadInMB": 0}, "not supported"),
    ({"split": "RecordIO"}, "SplitType RecordIO is not supported"),
    ({"split": "TFRecord"}, "SplitType TFRecord is not supported"),
    ({"data_type": "AugmentedManifestFile"}, "not supported for transform jobs"),
    ({"DataProcessing": {"InputFilter": "features"}}, "not a valid JSONPath"),
    ({"Environment": {"TIDESERVE_SPOT": "yes"}}, "TIDESERVE_SPOT 'yes' is not valid"),
])
def test_refused_requests_say_why(extra, message):
    with pytest.raises(ValidationError, match=message):
        TransformJobSpec.parse(request(**extra))


def test_request_beats_execution_parameters_beats_defaults():
    spec = TransformJobSpec.parse(request())
    assert effective_parameters(spec, None) == ("MultiRecord", 6, 1)
    container = {"MaxConcurrentTransforms": 4, "BatchStrategy": "SINGLE_RECORD",
                 "MaxPayloadInMB": 10}
    assert effective_parameters(spec, container) == ("SingleRecord", 10, 4)
    spec = TransformJobSpec.parse(request(MaxConcurrentTransforms=2, BatchStrategy="MultiRecord"))
    assert effective_parameters(spec, container) == ("MultiRecord", 10, 2)


@pytest.mark.parametrize(("prefix", "obj", "expected"), [
    ("s3://inputs/p/", "s3://inputs/p/a.csv", "s3://out/j/a.csv.out"),
    ("s3://inputs/p/", "s3://inputs/p/sub/b.csv", "s3://out/j/sub/b.csv.out"),
    ("s3://inputs/p/part-", "s3://inputs/p/part-1.csv", "s3://out/j/part-1.csv.out"),
    ("s3://inputs/p/a.csv", "s3://inputs/p/a.csv", "s3://out/j/a.csv.out"),
    ("s3://inputs", "s3://inputs/x/y.csv", "s3://out/j/x/y.csv.out"),
])
def test_one_output_per_input_named_after_it(prefix, obj, expected):
    assert output_uri("s3://out/j/", prefix, obj) == expected


@pytest.mark.parametrize(("environment", "spot"), [
    ({}, False), ({"TIDESERVE_SPOT": "true"}, True), ({"TIDESERVE_SPOT": "False"}, False)])
def test_tideserve_spot_in_the_environment_runs_the_job_on_spot(environment, spot):
    assert TransformJobSpec.parse(request(Environment=environment)).spot is spot
