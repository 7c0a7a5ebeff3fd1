"""The SageMaker control plane through its service functions: desired state recorded, AWS's
validation and wording, status rules. (The wire protocol and the controller are covered by
the integration tests.)"""

from __future__ import annotations

import pytest

from tideserve.clock import FakeClock
from tideserve.control.names import Arns
from tideserve.control.sagemaker import SageMakerService
from tideserve.control.store import ControlStore
from tideserve.cost.catalog import Catalog
from tideserve.db import make_engine
from tideserve.errors import AlreadyExistsError, ConflictError, NotFoundError, ValidationError
from tideserve.schema import create_all
from tideserve.serving.images import resolve_runtime

ROLE = "arn:aws:iam::123456789012:role/test"


@pytest.fixture
def service(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_all(engine)
    changed: list[str] = []
    svc = SageMakerService(ControlStore(engine), Arns("us-east-1", "123456789012"),
                           Catalog.default(), FakeClock(), on_change=changed.append)
    svc.changed = changed  # type: ignore[attr-defined]
    return svc


def model(svc, name="m", image="tideserve/sklearn"):
    return svc.create_model({"ModelName": name, "ExecutionRoleArn": ROLE,
                             "PrimaryContainer": {"Image": image, "ModelDataUrl": "s3://b/k"}})


def config(svc, name="c", model_name="m", variants=None):
    variants = variants or [{"VariantName": "AllTraffic", "ModelName": model_name,
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}]
    return svc.create_endpoint_config({"EndpointConfigName": name,
                                       "ProductionVariants": variants})


def test_arns_carry_the_lower_cased_name(service):
    assert model(service, "MyModel")["ModelArn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:model/mymodel")


def test_a_duplicate_model_differing_only_in_case_is_refused(service):
    model(service, "Dup")
    with pytest.raises(AlreadyExistsError, match='Cannot create already existing model'):
        model(service, "dup")


def test_unknown_images_are_refused_and_aws_framework_images_map_to_runtimes(service):
    with pytest.raises(ValidationError, match="is not supported"):
        model(service, "x", image="docker.io/someone/server:latest")
    assert resolve_runtime(
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    ) == "sklearn"
    assert resolve_runtime(
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
    ) == "pytorch"
    assert resolve_runtime(
        "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1") == "xgboost"
    assert resolve_runtime("tideserve/onnx:latest") == "onnx"


def test_an_endpoint_config_must_name_existing_models_and_known_instance_types(service):
    with pytest.raises(NotFoundError, match='Could not find model "arn:aws:sagemaker:'):
        config(service, model_name="ghost")
    model(service)
    with pytest.raises(ValidationError, match="not in the price catalog"):
        config(service, variants=[{"VariantName": "v", "ModelName": "m",
                                   "InstanceType": "ml.imaginary.huge",
                                   "InitialInstanceCount": 1}])
    with pytest.raises(ValidationError, match="unique"):
        config(service, variants=[
            {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}] * 2)


def test_create_endpoint_records_desired_state_and_wakes_the_controller(service):
    model(service)
    config(service)
    service.create_endpoint({"EndpointName": "E", "EndpointConfigName": "c"})
    desc = service.describe_endpoint({"EndpointName": "E"})
    assert desc["EndpointStatus"] == "Creating"
    variant = desc["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (2, 0)
    assert variant["DesiredWeight"] == 1.0
    assert service.changed == ["E"]
    with pytest.raises(AlreadyExistsError, match="Cannot create already existing endpoint"):
        service.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})


def test_an_in_progress_endpoint_cannot_be_updated_or_deleted(service):
    model(service)
    config(service)
    service.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    with pytest.raises(ConflictError, match='Cannot update in-progress endpoint'):
        service.update_endpoint_weights_and_capacities({
            "EndpointName": "e",
            "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic",
                                             "DesiredInstanceCount": 3}]})
    with pytest.raises(ConflictError):
        service.delete_endpoint({"EndpointName": "e"})


def test_weights_and_capacities_name_existing_variants_once(service):
    model(service)
    config(service)
    service.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    service.store.modify_endpoint("e", lambda row: setattr(row, "status", "InService") or True)
    with pytest.raises(ValidationError, match="not present"):
        service.update_endpoint_weights_and_capacities({
            "EndpointName": "e", "DesiredWeightsAndCapacities": [{"VariantName": "Nope"}]})
    with pytest.raises(ValidationError, match="repeated"):
        service.update_endpoint_weights_and_capacities({
            "EndpointName": "e", "DesiredWeightsAndCapacities": [
                {"VariantName": "AllTraffic"}, {"VariantName": "AllTraffic"}]})
    service.update_endpoint_weights_and_capacities({
        "EndpointName": "e", "DesiredWeightsAndCapacities": [
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 0, "DesiredWeight": 0.5}]})
    variant = service.describe_endpoint({"EndpointName": "e"})["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["DesiredWeight"]) == (0, 0.5)


def test_update_endpoint_keeps_the_old_variants_until_the_new_fleet_serves(service):
    model(service)
    config(service)
    config(service, "c2", variants=[{"VariantName": "Blue", "ModelName": "m",
                                     "InstanceType": "ml.c5.large", "InitialInstanceCount": 1}])
    service.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    service.store.modify_endpoint("e", lambda row: setattr(row, "status", "InService") or True)
    service.update_endpoint({"EndpointName": "e", "EndpointConfigName": "c2"})
    desc = service.describe_endpoint({"EndpointName": "e"})
    assert desc["EndpointStatus"] == "Updating"
    assert desc["EndpointConfigName"] == "c"
    pending = desc["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "c2"
    # The serving fleet stays in ProductionVariants; the new one is described apart, as AWS
    # does, so code reading ProductionVariants[0] sees the instances that serve.
    assert [v["VariantName"] for v in desc["ProductionVariants"]] == ["AllTraffic"]
    assert desc["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    assert [(v["VariantName"], v["InstanceType"], v["DesiredInstanceCount"])
            for v in pending["ProductionVariants"]] == [("Blue", "ml.c5.large", 1)]


def test_list_endpoints_sorts_filters_and_pages(service):
    model(service)
    config(service)
    for name in ["alpha", "beta", "gamma"]:
        service.clock.advance(1)
        service.create_endpoint({"EndpointName": name, "EndpointConfigName": "c"})
    newest_first = service.list_endpoints({})["Endpoints"]
    assert [e["EndpointName"] for e in newest_first] == ["gamma", "beta", "alpha"]
    page1 = service.list_endpoints({"MaxResults": 2, "SortBy": "Name", "SortOrder": "Ascending"})
    assert [e["EndpointName"] for e in page1["Endpoints"]] == ["alpha", "beta"]
    page2 = service.list_endpoints({"MaxResults": 2, "SortBy": "Name", "SortOrder": "Ascending",
                                    "NextToken": page1["NextToken"]})
    assert [e["EndpointName"] for e in page2["Endpoints"]] == ["gamma"]
    assert "NextToken" not in page2
    assert [e["EndpointName"] for e in service.list_endpoints(
        {"NameContains": "ET"})["Endpoints"]] == ["beta"]


def test_tags_need_an_existing_resource(service):
    with pytest.raises(ValidationError, match="does not exist"):
        service.add_tags({"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
                          "Tags": [{"Key": "a", "Value": "b"}]})
