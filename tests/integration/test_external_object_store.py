"""`tideserve up --object-store file://<dir>`: model data and async inputs and outputs live in an
external store (here a directory standing in for a shared filesystem or an S3-compatible store;
no network in tests), not in the embedded one under <state-dir>/s3."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_realtime_endpoints import wait_in_service
from tests.support import RunningServer, csv_rows, start_server, stop_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def external(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("external-store") / "external"


@pytest.fixture(scope="module")
def ext_server(tmp_path_factory, external):
    srv = start_server(tmp_path_factory.mktemp("ext-state") / "state", period=2.0,
                       extra=["--object-store", f"file://{external}"])
    try:
        yield srv
    finally:
        stop_server(srv)


def create_model(sm, name: str, model_data: str) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
                    PrimaryContainer={"Image": "tideserve/sklearn", "ModelDataUrl": model_data})


def wait_for_file(path: Path, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            return path.read_bytes()
        time.sleep(0.2)
    pytest.fail(f"{path} never appeared")


def test_model_data_is_read_from_the_external_store(ext_server: RunningServer, external,
                                                    trained):
    model, X, archive, _ = trained
    (external / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(archive, external / "models" / "m.tar.gz")
    sm, rt = ext_server.client("sagemaker"), ext_server.client("sagemaker-runtime")
    create_model(sm, "ext-model", "s3://models/m.tar.gz")
    sm.create_endpoint_config(EndpointConfigName="ext-model", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "ext-model", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ext-model", EndpointConfigName="ext-model")
    assert wait_in_service(sm, "ext-model")["EndpointStatus"] == "InService"
    resp = rt.invoke_endpoint(EndpointName="ext-model", Body=csv_rows(X[:4]).encode(),
                              ContentType="text/csv", Accept="application/json")
    np.testing.assert_array_equal(np.asarray(json.loads(resp["Body"].read())).ravel(),
                                  model.predict(X[:4]))
    assert not (ext_server.state_dir / "s3" / "models").exists()  # never the embedded store


def test_an_async_endpoint_reads_and_writes_the_external_store(ext_server: RunningServer,
                                                               external, trained):
    model, X, archive, _ = trained
    (external / "models").mkdir(parents=True, exist_ok=True)
    shutil.copy(archive, external / "models" / "async.tar.gz")
    (external / "inputs").mkdir(parents=True, exist_ok=True)
    (external / "inputs" / "rows.csv").write_text(csv_rows(X[:6]))
    sm, rt = ext_server.client("sagemaker"), ext_server.client("sagemaker-runtime")
    create_model(sm, "ext-async", "s3://models/async.tar.gz")
    sm.create_endpoint_config(
        EndpointConfigName="ext-async",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "ext-async",
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://results/ext/out",
                                               "S3FailurePath": "s3://results/ext/failed"}})
    sm.create_endpoint(EndpointName="ext-async", EndpointConfigName="ext-async")
    wait_in_service(sm, "ext-async")
    with pytest.raises(rt.exceptions.ValidationError, match="does not exist"):
        rt.invoke_endpoint_async(EndpointName="ext-async", InputLocation="s3://inputs/absent.csv",
                                 ContentType="text/csv")
    resp = rt.invoke_endpoint_async(EndpointName="ext-async", InputLocation="s3://inputs/rows.csv",
                                    ContentType="text/csv", Accept="application/json")
    output = external / resp["OutputLocation"].removeprefix("s3://")
    body = wait_for_file(output, 30)
    np.testing.assert_array_equal(np.asarray(json.loads(body)).ravel(), model.predict(X[:6]))
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]  # no temp keys
    assert not (ext_server.state_dir / "s3" / "results").exists()


def test_a_multi_model_endpoint_reads_its_archives_from_the_external_store(
        ext_server: RunningServer, external, trained):
    model, X, archive, _ = trained
    (external / "models" / "mme").mkdir(parents=True, exist_ok=True)
    shutil.copy(archive, external / "models" / "mme" / "a.tar.gz")
    sm, rt = ext_server.client("sagemaker"), ext_server.client("sagemaker-runtime")
    sm.create_model(ModelName="ext-mme", ExecutionRoleArn="arn:aws:iam::123456789012:role/test",
                    PrimaryContainer={"Image": "tideserve/sklearn", "Mode": "MultiModel",
                                      "ModelDataUrl": "s3://models/mme/"})
    sm.create_endpoint_config(EndpointConfigName="ext-mme", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "ext-mme", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="ext-mme", EndpointConfigName="ext-mme")
    assert wait_in_service(sm, "ext-mme")["EndpointStatus"] == "InService"
    shutil.copy(archive, external / "models" / "mme" / "b.tar.gz")  # added after the deploy
    for target in ("a.tar.gz", "b.tar.gz"):
        resp = rt.invoke_endpoint(EndpointName="ext-mme", TargetModel=target,
                                  Body=csv_rows(X[:4]).encode(), ContentType="text/csv",
                                  Accept="application/json")
        np.testing.assert_array_equal(np.asarray(json.loads(resp["Body"].read())).ravel(),
                                      model.predict(X[:4]))
