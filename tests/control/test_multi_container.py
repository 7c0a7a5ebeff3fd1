"""CreateModel's rules for multi-container models (serial pipelines, direct invocation):
what is accepted, how unnamed pipeline containers are named, and what is refused."""

from __future__ import annotations

import pytest

from tideserve.control.specs import ModelSpec
from tideserve.errors import ValidationError


def container(hostname: str | None = None, **extra) -> dict:
    c = {"Image": "tideserve/sklearn", "ModelDataUrl": "s3://b/model.tar.gz", **extra}
    if hostname is not None:
        c["ContainerHostname"] = hostname
    return c


def model(containers: list[dict], mode: str | None = None, **extra) -> dict:
    p = {"ModelName": "m", "Containers": containers, **extra}
    if mode is not None:
        p["InferenceExecutionConfig"] = {"Mode": mode}
    return p


def test_a_pipeline_without_hostnames_names_its_containers_by_position() -> None:
    spec = ModelSpec.parse(model([container(), container(), container()]))
    assert spec.execution_mode == "Serial"  # AWS's default mode
    assert spec.container_hostnames == ("container-1", "container-2", "container-3")


def test_direct_invocation_keeps_the_given_hostnames_in_order() -> None:
    spec = ModelSpec.parse(model([container("pre"), container("model")], "Direct"))
    assert (spec.execution_mode, spec.container_hostnames) == ("Direct", ("pre", "model"))


def test_one_container_stays_a_single_container_model_whatever_the_form() -> None:
    assert ModelSpec.parse(model([container()])).execution_mode is None
    assert ModelSpec.parse(model([container()], "Serial")).execution_mode is None
    primary = {"ModelName": "m", "PrimaryContainer": container("ignored")}
    assert ModelSpec.parse(primary).execution_mode is None


@pytest.mark.parametrize(("request_", "message"), [
    (model([container()] * 16), "at most 15 containers; Containers has 16"),
    (model([container("a"), container("b")], "Direct",
           PrimaryContainer=container()), "Exactly one of PrimaryContainer or Containers"),
    (model([container("a"), container()], "Direct"),
     "ContainerHostname is required for every container .* Containers.2 has none"),
    (model([container(), container()], "Direct"), "Containers.1 has none"),
    (model([container("a")], "Direct"), "Mode Direct needs a Containers list of 2 to 15"),
    ({"ModelName": "m", "PrimaryContainer": container("a"),
      "InferenceExecutionConfig": {"Mode": "Direct"}}, "Mode Direct needs a Containers list"),
    (model([container("a"), container()]),
     "must be specified for every container; Containers.2 has none"),
    (model([container("same"), container("Same")], "Direct"),
     "ContainerHostname 'Same' appears more than once"),
    (model([container(Environment={"A": "x" * 1000}) for _ in range(2)] * 1
           + [container(Environment={f"K{i}": "y" * 1000 for i in range(31)})]),
     r"hold \d+ bytes .* at most 32768 \(32 KB\)"),
], ids=["16 containers", "with PrimaryContainer", "direct without a hostname",
        "direct without any hostname", "direct with one container",
        "direct on a primary container", "pipeline with some hostnames", "duplicate hostnames",
        "environments over 32 KB together"])
def test_combinations_aws_refuses_are_refused(request_, message) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.parse(request_)


def test_a_stored_pipeline_loads_with_its_mode_and_names() -> None:
    spec = ModelSpec.load(model([container("pre"), container("xgb")], "Serial"))
    assert spec.execution_mode == "Serial"
    assert [c.container_hostname for c in spec.containers] == ["pre", "xgb"]
