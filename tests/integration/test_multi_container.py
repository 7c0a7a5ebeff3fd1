"""Multi-container endpoints through boto3 against a real `tideserve up`: a serial inference
pipeline (a preprocessing inference.py that scales and one-hot encodes raw CSV, then an
XGBoost model), direct invocation by TargetContainerHostname, a container failing or crashing
in a pipeline, one that cannot start, and the combinations AWS refuses."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.test_realtime_endpoints import wait_in_service, wait_until_created
from tests.support import RunningServer

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/test"
SITES = ("north", "south", "west")

# Raw rows are `f1,...,f5,site`; the answer is CSV of the 5 scaled features and 3 one-hot
# columns. `site` "boom" raises (a 500 from this container), "crash" kills its process, "big"
# answers 6 000 000 bytes (more than a pipeline passes between containers).
PREPROCESS = '''
import json
import os
from pathlib import Path

import numpy as np


def model_fn(model_dir):
    return json.loads((Path(model_dir) / "scaler.json").read_text())


def input_fn(body, content_type):
    if content_type != "text/csv":
        raise ValueError(f"preprocessing takes text/csv, not {content_type}")
    return [line.split(",") for line in body.strip().splitlines()]


def predict_fn(rows, params):
    out = []
    for row in rows:
        site = row[-1].strip()
        if site == "crash":
            os._exit(3)
        if site == "boom":
            raise RuntimeError("unknown site boom")
        if site == "big":
            return "big"
        x = (np.asarray(row[:-1], dtype=float) - params["mean"]) / params["std"]
        onehot = [float(site == s) for s in params["sites"]]
        out.append(list(x) + onehot)
    return out


def output_fn(rows, accept):
    if rows == "big":
        return "1," * 3_000_000, "text/csv"
    return "\\n".join(",".join(repr(float(v)) for v in row) for row in rows), "text/csv"
'''


def transform(raw: np.ndarray, sites: list[str], mean: np.ndarray, std: np.ndarray):
    onehot = np.array([[float(s == k) for k in SITES] for s in sites])
    return np.hstack([(raw - mean) / std, onehot])


def pack(dest: Path, files: dict[str, bytes]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """(raw features, sites, preprocessing archive, xgboost archive, booster, mean, std)."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    raw = X[:, :5]
    rng = np.random.default_rng(0)
    sites = [SITES[i] for i in rng.integers(0, 3, len(raw))]
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(transform(raw, sites, mean, std), label=y),
                        num_boost_round=20)
    root = tmp_path_factory.mktemp("pipeline")
    scaler = json.dumps({"mean": mean.tolist(), "std": std.tolist(), "sites": list(SITES)})
    pre = pack(root / "pre.tar.gz", {"scaler.json": scaler.encode(),
                                     "code/inference.py": PREPROCESS.encode()})
    booster.save_model(str(root / "xgboost-model.json"))
    model = pack(root / "xgb.tar.gz", {"xgboost-model.json":
                                       (root / "xgboost-model.json").read_bytes()})
    return raw, sites, pre, model, booster, mean, std


def csv(raw: np.ndarray, sites: list[str]) -> str:
    return "\n".join(",".join([*map(repr, map(float, row)), s]) for row, s in
                     zip(raw, sites, strict=True))


def pre_container(archive: Path, hostname: str | None = "pre") -> dict:
    c = {"Image": "tideserve/python", "ModelDataUrl": str(archive),
         "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}}
    return {**c, "ContainerHostname": hostname} if hostname else c


def xgb_container(archive: Path, hostname: str | None = "xgb") -> dict:
    c = {"Image": "tideserve/xgboost", "ModelDataUrl": str(archive)}
    return {**c, "ContainerHostname": hostname} if hostname else c


def deploy(sm, name: str, containers: list[dict], mode: str | None = None) -> None:
    extra = {"InferenceExecutionConfig": {"Mode": mode}} if mode else {}
    sm.create_model(ModelName=name, Containers=containers, ExecutionRoleArn=ROLE, **extra)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def instance_processes(server: RunningServer) -> dict[int, list[int]]:
    """Each multi-container instance's front pid -> its containers' pids."""
    import psutil

    out = {}
    for proc in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            if "tideserve.serving.containers.front" in " ".join(proc.cmdline()):
                out[proc.pid] = [c.pid for c in proc.children()]
        except psutil.Error:
            continue
    return out


def metric_sum(cw, name: str, endpoint: str, container: str | None = None,
               timeout: float = 15.0, namespace: str = "AWS/SageMaker") -> float:
    """The Sum of `name` over the last minutes, once the period it is in has been flushed."""
    dims = [{"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    if container is not None:
        dims.append({"Name": "ContainerName", "Value": container})
    deadline = time.monotonic() + timeout
    while True:
        now = time.time()
        points = cw.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=dims, StartTime=now - 300,
            EndTime=now + 60, Period=60, Statistics=["Sum", "SampleCount"])["Datapoints"]
        if points or time.monotonic() > deadline:
            return sum(p["Sum"] for p in points)
        time.sleep(0.5)


def test_a_serial_pipeline_answers_as_the_transform_then_the_model_would(
    server: RunningServer, pipeline,
):
    raw, sites, pre, model, booster, mean, std = pipeline
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    deploy(sm, "pipe", [pre_container(pre), xgb_container(model)])  # Serial by default
    assert sm.describe_model(ModelName="pipe")["Containers"][1]["ContainerHostname"] == "xgb"
    wait_in_service(sm, "pipe")

    resp = rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:25], sites[:25]),
                              ContentType="text/csv", Accept="application/json")
    assert resp["ContentType"] == "application/json"  # the last container's answer
    expected = booster.inplace_predict(transform(raw[:25], sites[:25], mean, std))
    np.testing.assert_allclose(np.asarray(json.loads(resp["Body"].read())).ravel(), expected,
                               rtol=1e-6)

    with pytest.raises(ClientError) as targeted:
        rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:1], sites[:1]),
                           ContentType="text/csv", TargetContainerHostname="xgb")
    assert targeted.value.response["Error"]["Code"] == "ValidationError"
    assert "not configured for direct invocation" in str(targeted.value)

    # A container that fails names itself; the chain stops there.
    with pytest.raises(rt.exceptions.ModelError) as failed:
        rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:1], ["boom"]),
                           ContentType="text/csv")
    assert failed.value.response["OriginalStatusCode"] == 500
    assert "from pre with message" in str(failed.value)
    assert "unknown site boom" in failed.value.response["OriginalMessage"]

    with pytest.raises(rt.exceptions.ModelError) as too_big:
        rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:1], ["big"]),
                           ContentType="text/csv")
    assert ("Received response from pre with status code 200. However, the request payload "
            "from pre to xgb is 6000000 bytes, which has exceeded the maximum limit of 5 MB."
            in str(too_big.value))

    cw = server.client("cloudwatch")
    assert metric_sum(cw, "ContainerLatency", "pipe", "pre") > 0
    assert metric_sum(cw, "ContainerLatency", "pipe", "xgb") > 0

    # A container whose process dies: ModelError naming it, and the whole instance is
    # replaced (the front stops the other container and exits).
    (front, containers), = instance_processes(server).items()
    assert len(containers) == 2
    with pytest.raises(rt.exceptions.ModelError) as crashed:
        rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:1], ["crash"]),
                           ContentType="text/csv")
    assert "from pre with message" in str(crashed.value)
    deadline = time.monotonic() + 60
    while True:
        try:
            again = rt.invoke_endpoint(EndpointName="pipe", Body=csv(raw[:3], sites[:3]),
                                       ContentType="text/csv", Accept="application/json")
            break
        except ClientError:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.5)
    np.testing.assert_allclose(np.asarray(json.loads(again["Body"].read())).ravel(),
                               expected[:3], rtol=1e-6)
    import psutil

    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in (front, *containers))
    assert front not in instance_processes(server)


def test_a_direct_endpoint_answers_from_the_container_each_request_names(
    server: RunningServer, pipeline, trained,
):
    raw, sites, pre, model, booster, mean, std = pipeline
    sk_model, X, sk_archive, _ = trained
    sm, rt = server.client("sagemaker"), server.client("sagemaker-runtime")
    sklearn = {"Image": "tideserve/sklearn", "ModelDataUrl": str(sk_archive),
               "ContainerHostname": "cancer"}
    deploy(sm, "direct", [xgb_container(model), sklearn], mode="Direct")
    wait_in_service(sm, "direct")

    features = transform(raw[:10], sites[:10], mean, std)
    body = "\n".join(",".join(map(repr, map(float, row))) for row in features)
    xgb_answer = rt.invoke_endpoint(EndpointName="direct", Body=body, ContentType="text/csv",
                                    TargetContainerHostname="xgb")
    np.testing.assert_allclose(np.asarray(json.loads(xgb_answer["Body"].read())).ravel(),
                               booster.inplace_predict(features), rtol=1e-6)
    rows = "\n".join(",".join(map(repr, map(float, row))) for row in X[:10])
    sk_answer = rt.invoke_endpoint(EndpointName="direct", Body=rows, ContentType="text/csv",
                                   TargetContainerHostname="cancer")
    np.testing.assert_array_equal(np.asarray(json.loads(sk_answer["Body"].read())).ravel(),
                                  sk_model.predict(X[:10]))

    for kwargs, words in (({}, "TargetContainerHostname is required"),
                          ({"TargetContainerHostname": "nope"},
                           "Container hostname nope does not exist in endpoint direct")):
        with pytest.raises(ClientError) as refused:
            rt.invoke_endpoint(EndpointName="direct", Body=rows, ContentType="text/csv",
                               **kwargs)
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert words in str(refused.value)

    cw = server.client("cloudwatch")
    assert metric_sum(cw, "Invocations", "direct", "xgb") == 1
    assert metric_sum(cw, "Invocations", "direct", "cancer") == 1
    assert metric_sum(cw, "Invocations", "direct") == 2  # the variant's total
    assert metric_sum(cw, "ContainerLatency", "direct", "cancer") > 0
    # Each container's share of the instance's memory, and the instance's as a whole.
    instances = "/aws/sagemaker/Endpoints"
    assert metric_sum(cw, "MemoryUtilization", "direct", "xgb", namespace=instances) > 0
    assert metric_sum(cw, "MemoryUtilization", "direct", namespace=instances) > 0


def test_a_container_that_cannot_start_fails_the_endpoint_naming_it(
    server: RunningServer, pipeline, tmp_path: Path,
):
    _, _, pre, _, _, _, _ = pipeline
    empty = pack(tmp_path / "empty.tar.gz", {"README": b"no model here"})
    sm = server.client("sagemaker")
    deploy(sm, "broken-pipe", [pre_container(pre), xgb_container(empty, "scorer")])
    desc = wait_until_created(sm, "broken-pipe", timeout=90)
    assert desc["EndpointStatus"] == "Failed"
    assert "container scorer exited with status 1 before it was ready" in desc["FailureReason"]
    assert "found no model file" in desc["FailureReason"]  # the container's own words
    sm.delete_endpoint(EndpointName="broken-pipe")


def test_combinations_aws_refuses_are_validation_errors(server: RunningServer, pipeline):
    _, _, pre, model, _, _, _ = pipeline
    sm = server.client("sagemaker")
    cases = [
        ([pre_container(pre, f"c{i}") for i in range(16)], None,
         "Member must have length less than or equal to 15"),
        ([pre_container(pre), xgb_container(model, None)], "Direct",
         "ContainerHostname is required for every container"),
        ([pre_container(pre, None), xgb_container(model, None)], "Direct",
         "ContainerHostname is required for every container"),
        ([pre_container(pre), xgb_container(model, None)], None,
         "must be specified for every container"),
        ([pre_container(pre, "same"), xgb_container(model, "same")], None,
         "appears more than once"),
    ]
    for i, (containers, mode, words) in enumerate(cases):
        extra = {"InferenceExecutionConfig": {"Mode": mode}} if mode else {}
        with pytest.raises(ClientError) as refused:
            sm.create_model(ModelName=f"bad-{i}", Containers=containers,
                            ExecutionRoleArn=ROLE, **extra)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert words in str(refused.value), (i, str(refused.value))
    with pytest.raises(ClientError) as both:
        sm.create_model(ModelName="bad-both", PrimaryContainer=xgb_container(model),
                        Containers=[pre_container(pre), xgb_container(model)],
                        ExecutionRoleArn=ROLE)
    assert "Exactly one of PrimaryContainer or Containers" in str(both.value)

    # Serverless endpoints take no inference pipelines (AWS's exclusions): the endpoint fails.
    sm.create_model(ModelName="pipe-sl", Containers=[pre_container(pre), xgb_container(model)],
                    ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="pipe-sl", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "pipe-sl",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    sm.create_endpoint(EndpointName="pipe-sl", EndpointConfigName="pipe-sl")
    desc = wait_until_created(sm, "pipe-sl")
    assert desc["EndpointStatus"] == "Failed"
    assert "serverless endpoints do not support multi-container models" in desc["FailureReason"]
