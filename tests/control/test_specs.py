"""The hosting requests parsed once into frozen specs: AWS's names, AWS's wording for what is
refused, and rows stored by earlier versions loading unchanged."""

from __future__ import annotations

import dataclasses
import re

import botocore.session
import pytest

from tideserve.control.endpoint_specs import (
    DesiredWeightAndCapacity,
    EndpointSpec,
    ServerlessUpdateConfig,
    UpdateEndpointSpec,
    WeightsAndCapacitiesSpec,
)
from tideserve.control.listing import ListQuery
from tideserve.control.specs import (
    ContainerSpec,
    EndpointConfigSpec,
    ModelSpec,
    ProductionVariantSpec,
    Tag,
)
from tideserve.errors import ValidationError

CONTAINER = {"Image": "tideserve/sklearn", "ModelDataUrl": "s3://b/model.tar.gz"}

# Each spec and the botocore shape its fields are named after (`wire` is the request itself).
SHAPES = [
    (ContainerSpec, "ContainerDefinition"),
    (ModelSpec, "CreateModelInput"),
    (ProductionVariantSpec, "ProductionVariant"),
    (EndpointConfigSpec, "CreateEndpointConfigInput"),
    (EndpointSpec, "CreateEndpointInput"),
    (UpdateEndpointSpec, "UpdateEndpointInput"),
    (DesiredWeightAndCapacity, "DesiredWeightAndCapacity"),
    (ServerlessUpdateConfig, "ProductionVariantServerlessUpdateConfig"),
    (WeightsAndCapacitiesSpec, "UpdateEndpointWeightsAndCapacitiesInput"),
    (Tag, "Tag"),
    (ListQuery, "ListEndpointsInput"),
]
NOT_MEMBERS = {"wire", "offset"}  # the request itself; NextToken as the offset it encodes


@pytest.fixture(scope="module")
def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


@pytest.mark.parametrize(("spec", "shape"), SHAPES, ids=[s for _, s in SHAPES])
def test_every_field_is_named_after_a_member_of_the_botocore_shape(
    sagemaker_model, spec, shape,
) -> None:
    members = sagemaker_model.shape_for(shape).members
    for field in dataclasses.fields(spec):
        if field.name in NOT_MEMBERS:
            continue
        aws = re.sub(r"(?:^|_)(\w)", lambda m: m.group(1).upper(), field.name)
        assert aws in members, f"{spec.__name__}.{field.name}: {shape} has no {aws}"


def test_a_model_parses_from_either_container_form_into_the_same_spec() -> None:
    primary = ModelSpec.parse({"ModelName": "m", "PrimaryContainer": CONTAINER,
                               "Tags": [{"Key": "team", "Value": "ml"}]})
    listed = ModelSpec.parse({"ModelName": "m", "Containers": [CONTAINER]})
    assert primary.containers == listed.containers
    assert primary.images == ["tideserve/sklearn"]
    assert primary.tags == (Tag("team", "ml"),)
    assert "Tags" not in primary.wire  # what the models table stores
    with pytest.raises(dataclasses.FrozenInstanceError):
        primary.model_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("request_", "message"), [
    ({"ModelName": "m"}, "Exactly one of PrimaryContainer or Containers must be specified."),
    ({"ModelName": "m", "PrimaryContainer": CONTAINER, "Containers": [CONTAINER]},
     "Exactly one of PrimaryContainer or Containers"),
    ({"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "s3://b/k"}},
     "ContainerDefinition.Image is required."),
    ({"ModelName": "m", "PrimaryContainer": {**CONTAINER, "MultiModelConfig": {}}},
     "MultiModelConfig is only valid for a container with Mode set to MultiModel."),
    ({"ModelName": "m", "PrimaryContainer": {"Image": "tideserve/sklearn"}},
     "ContainerDefinition.ModelDataUrl is required by tideserve runtimes."),
], ids=["no container", "both forms", "no image", "multi-model", "no model data"])
def test_a_model_that_tideserve_cannot_serve_is_refused_in_aws_words(request_, message) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.parse(request_)


def test_a_stored_model_and_config_load_as_earlier_versions_wrote_them() -> None:
    # Rows are the request less Tags, verbatim; loading does not re-validate them.
    model = ModelSpec.load({"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::1:role/r",
                            "Containers": [{"Image": "tideserve/onnx", "ModelDataUrl": "x",
                                            "Environment": {"A": 1}}]})
    assert model.images == ["tideserve/onnx"]
    assert model.containers[0].environment == {"A": "1"}
    config = EndpointConfigSpec.load({"EndpointConfigName": "c", "ProductionVariants": [
        {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 2},
        {"VariantName": "s", "ModelName": "m",
         "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
    ]})
    instance, serverless = config.production_variants
    assert (instance.instance_type, instance.initial_instance_count,
            instance.initial_variant_weight, instance.serverless_config) == (
        "ml.m5.large", 2, 1.0, None)
    assert serverless.serverless_config == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert config.async_config is None and config.model_names == ["m", "m"]


def test_retaining_variant_properties_honours_the_exclusions() -> None:
    spec = UpdateEndpointSpec.parse({
        "EndpointName": "e", "EndpointConfigName": "c", "RetainAllVariantProperties": True,
        "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}]})
    assert spec.retains("DesiredInstanceCount") and not spec.retains("DesiredWeight")
    plain = UpdateEndpointSpec.parse({"EndpointName": "e", "EndpointConfigName": "c"})
    assert not plain.retains("DesiredInstanceCount")


def test_weights_and_capacities_name_each_variant_once_and_keep_what_was_left_out() -> None:
    spec = WeightsAndCapacitiesSpec.parse({"EndpointName": "e", "DesiredWeightsAndCapacities": [
        {"VariantName": "a", "DesiredWeight": 1},
        {"VariantName": "b", "ServerlessUpdateConfig": {"ProvisionedConcurrency": 2}}]})
    a, b = spec.desired_weights_and_capacities
    assert (a.desired_weight, a.desired_instance_count, a.serverless_update_config) == (
        1.0, None, None)
    assert b.serverless_update_config == ServerlessUpdateConfig(None, 2)
    with pytest.raises(ValidationError, match=r"The variant name\(s\) \[a\] are repeated."):
        WeightsAndCapacitiesSpec.parse({"EndpointName": "e", "DesiredWeightsAndCapacities": [
            {"VariantName": "a"}, {"VariantName": "a"}]})
